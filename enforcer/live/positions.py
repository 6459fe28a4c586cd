"""Where each source partition stands inside the open transaction. Pure."""

from __future__ import annotations

TopicPartitionKey = tuple[str, int]


class TransactionPositions:
    """For each partition read since the last commit: the first offset read (where a
    rewind goes back to) and the offset after the last one read (what a commit stores).
    """

    def __init__(self) -> None:
        self._first: dict[TopicPartitionKey, int] = {}
        self._next: dict[TopicPartitionKey, int] = {}

    def advance(self, topic: str, partition: int, offset: int) -> None:
        """Record that the record at ``offset`` is part of the open transaction."""
        key = (topic, partition)
        self._first.setdefault(key, offset)
        self._next[key] = offset + 1

    def hold(self, topic: str, partition: int, offset: int) -> None:
        """Make the transaction commit ``offset`` for a partition none of whose records
        it read (a ledger partition restored to its end), unless it read some."""
        key = (topic, partition)
        self._first.setdefault(key, offset)
        self._next.setdefault(key, offset)

    def to_commit(self) -> dict[TopicPartitionKey, int]:
        """The offsets a commit stores: the next record to read, per partition."""
        return dict(self._next)

    def to_rewind(self) -> dict[TopicPartitionKey, int]:
        """Where reading must start again when the transaction is aborted."""
        return dict(self._first)

    def clear(self) -> None:
        """Forget everything (after a commit, an abort, or a rebalance)."""
        self._first.clear()
        self._next.clear()

    def __bool__(self) -> bool:
        return bool(self._next)

    def __len__(self) -> int:
        return len(self._next)
