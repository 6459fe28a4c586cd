"""A bounded memo: computed values kept by key, forgotten all at once when full.

Streams repeat a small set of inputs (identifier types, purpose lists, policy versions),
so a memo saves work; the bound keeps an unusual stream from growing it without end.
Emptying it whole is cheap and makes the bound exact; the next values fill it again.
"""

from __future__ import annotations

from typing import TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")


def remember(memo: dict[_K, _V], key: _K, value: _V, limit: int) -> _V:
    """Keep ``value`` under ``key`` in ``memo`` (emptied first when it holds ``limit``
    entries); return it."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value
