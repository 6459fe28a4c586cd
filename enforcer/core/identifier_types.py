"""Identifier type names (docs/contract.md: the identity event).

A type is trimmed and lower-cased, then must be a letter followed by letters, digits,
``_``, ``.``, ``:`` or ``-``, at most 64 characters in all (``email``, ``phone``,
``device_id``, ``hashed:email``). Types are copied into violations, retractions,
reports and exposure, so a value written where a type belongs (a phone number, an
email address) must never pass as one: those are dead-lettered. The closed alphabet
also means a look-alike letter cannot make ``phone`` into a type no rule names.
"""

from __future__ import annotations

import re

from enforcer.core.purposes import SPACE_PATTERN

TYPE_NAME_MAX = 64
_TYPE_NAME = re.compile(rf"[a-z][a-z0-9_.:-]{{0,{TYPE_NAME_MAX - 1}}}")
_PLAIN_TYPE_NAME = re.compile(rf"[A-Za-z][A-Za-z0-9_.:-]{{0,{TYPE_NAME_MAX - 1}}}")

# The one non-ASCII character lower() turns into a letter of the alphabet: KELVIN SIGN.
IDENTIFIER_TYPE_PATTERN = (
    rf"^{SPACE_PATTERN}*[A-Za-z\u212a][A-Za-z0-9_.:\u212a-]{{0,{TYPE_NAME_MAX - 1}}}"
    rf"{SPACE_PATTERN}*$"
)
"""A regular expression (ECMA-262 and Python alike) matching exactly the raw types
:func:`is_type_name` accepts: the pattern the published event schema gives a type."""

TYPE_NAME_RULE = (
    "must be an identifier type: a letter, then letters, digits, '_', '.', ':' or '-', "
    f"at most {TYPE_NAME_MAX} characters"
)
"""Why a type is refused (the value itself is never repeated)."""


def is_type_name(raw: str) -> bool:
    """Whether ``raw``, trimmed and lower-cased, is an identifier type name."""
    return _TYPE_NAME.fullmatch(raw.strip().lower()) is not None


def checked_type_name(raw: str) -> str:
    """``raw`` trimmed; raises ValueError (:data:`TYPE_NAME_RULE`) when it is not a type
    name. A validator for the models that take a type."""
    if not is_type_name(raw):
        raise ValueError(TYPE_NAME_RULE)
    return raw.strip()


def is_plain_type_name(raw: str) -> bool:
    """Whether ``raw`` is a type name as it stands: nothing to trim, ASCII (a fast
    path's test; a type it refuses may still be valid, see :func:`is_type_name`)."""
    return _PLAIN_TYPE_NAME.fullmatch(raw) is not None


_STORED: set[str] = set()
_STORED_KEPT = 1024


def is_stored_type_name(kind: str) -> bool:
    """Whether ``kind`` is a type as the decision stores it: a type name already
    trimmed and lower-cased (what exposure, plans and retractions hold). Remembered:
    a stream has a handful of types, read again for every entry."""
    if kind in _STORED:
        return True
    if _TYPE_NAME.fullmatch(kind) is None:
        return False
    if len(_STORED) >= _STORED_KEPT:
        _STORED.clear()
    _STORED.add(kind)
    return True
