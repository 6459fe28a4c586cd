"""A bounded memo: computed values kept by key, forgotten all at once when full.

Streams repeat a small set of inputs (identifier types, purpose lists, policy versions),
so a memo saves work; the bound keeps an unusual stream from growing it without end.
Emptying it whole is cheap and makes the bound exact; the next values fill it again.
"""

from __future__ import annotations

from collections.abc import Sequence
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


MEMO_TAGS = 8
MEMO_TAG_CHARS = 256


def small_enough(tags: Sequence[str]) -> bool:
    """Whether a judgement keyed by these purpose tags may be remembered: at most
    :data:`MEMO_TAGS` tags of at most :data:`MEMO_TAG_CHARS` characters in all. The
    count bound alone lets each entry be as large as a record: a stream of records
    each with a new list of thousands of tags would be kept whole, 65,536 of them,
    and the worker would run out of memory. Real tag lists are a few short tags; a
    longer one is judged every time."""
    return len(tags) <= MEMO_TAGS and sum(map(len, tags)) <= MEMO_TAG_CHARS
