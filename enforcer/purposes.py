"""Purpose tags: normalization and namespace matching (SPEC §4).

A purpose tag is a dotted path such as ``security.mfa``. Before any comparison it
is trimmed and lower-cased; it must then be one or more segments of
``[a-z0-9_-]+`` joined by single dots. Tag ``T`` lies within namespace ``N`` when
``T == N`` or ``T`` starts with ``N + "."``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TAG = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")

# Normalizing is on the hot path and real streams use a small vocabulary of tags,
# so results are memoized; the bound keeps hostile input from growing it forever.
_CACHE_LIMIT = 4096
_cache: dict[str, str | None] = {}


class InvalidPurposeTagError(ValueError):
    """A purpose tag that is not a dotted path of ``[a-z0-9_-]+`` segments."""


def normalize_tag(raw: str) -> str | None:
    """Return the normalized tag, or ``None`` when it is not a valid tag."""
    cached = _cache.get(raw, _cache)
    if cached is not _cache:
        return cached  # type: ignore[return-value]
    tag = raw.strip().lower()
    result = tag if _TAG.fullmatch(tag) else None
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[raw] = result
    return result


def normalize_namespace(raw: str) -> str:
    """Normalize a namespace written in a policy; raise on an invalid one."""
    tag = normalize_tag(raw)
    if tag is None:
        raise InvalidPurposeTagError(
            "must be dot-separated segments of lower-case letters, digits, '_' or '-'"
        )
    return tag


def within(tag: str, namespace: str) -> bool:
    """True when normalized ``tag`` lies within normalized ``namespace``."""
    return tag == namespace or tag.startswith(namespace + ".")


def within_any(tag: str, namespaces: Iterable[str]) -> bool:
    """True when normalized ``tag`` lies within at least one of ``namespaces``."""
    return any(tag == ns or tag.startswith(ns + ".") for ns in namespaces)
