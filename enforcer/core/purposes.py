"""Purpose tags: normalization and namespace matching (docs/contract.md: default policy).

A purpose tag is a dotted path such as ``security.mfa``. Before any comparison it
is trimmed and lower-cased; it must then be one or more segments of
``[a-z0-9_-]+`` joined by single dots. Tag ``T`` lies within namespace ``N`` when
``T == N`` or ``T`` starts with ``N + "."``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TAG = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")

# What str.strip() removes (every character whose isspace() is true) and the one
# non-ASCII character that lower() turns into [a-z0-9_-] (KELVIN SIGN -> "k").
SPACE_PATTERN = (
    r"[\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680"
    r"\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)
_SEGMENT = r"[A-Za-z0-9_\u212a-]+"
PURPOSE_TAG_PATTERN = rf"^{SPACE_PATTERN}*{_SEGMENT}(\.{_SEGMENT})*{SPACE_PATTERN}*$"
"""A regular expression (ECMA-262 and Python alike) matching exactly the raw tags
:func:`normalize_tag` accepts: the pattern the published event schema gives purpose
tags, so a record valid against it is never dead-lettered for a tag's characters."""


class InvalidPurposeTagError(ValueError):
    """A purpose tag that is not a dotted path of ``[a-z0-9_-]+`` segments."""


def normalize_tag(raw: str) -> str | None:
    """Return the normalized tag, or ``None`` when it is not a valid tag.

    Not memoized here: the evaluator memoizes whole judgements per raw purpose list.
    """
    tag = raw.strip().lower()
    return tag if _TAG.fullmatch(tag) else None


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
