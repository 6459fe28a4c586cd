"""A topic's partitions merged into one history, the same whatever order they are read in.

Remediation folds a sink's history into what each identifier's latest record says
(:class:`enforcer.remediate.planner.Planner`), and what it folds can depend on the order
records come in: a retraction in one partition between two forwards in another decides
whether the identifier's first forward is the earlier or the later one, and with it the
plan's contents and its id. A client hands over the partitions' records interleaved as
its fetches happen to return, so that order must not be the one folded.

:class:`PartitionMerge` takes each partition's records in offset order, in any
interleaving, and gives them back merged by (time, partition, offset): the next record
given is always the earliest head among the partitions, and is given only once every
partition still being read has a head to compare (or has ended). The result depends on
the partitions' contents only. Pure: the reader feeds it, and pauses a partition whose
buffer is full (:meth:`PartitionMerge.full`) so that memory stays bounded while
another partition catches up.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator

from enforcer.remediate.history import SinkRecord

MOST_BUFFERED = 20_000
"""Records buffered for one partition before its reader pauses it."""


class PartitionMerge:
    """Records of ``partitions`` (each added in offset order) given back in one order."""

    __slots__ = ("_buffers", "_heads", "_most", "_open", "_waiting")

    def __init__(self, partitions: Iterable[int], most_buffered: int | None = None) -> None:
        self._buffers: dict[int, deque[SinkRecord]] = {p: deque() for p in partitions}
        self._open = set(self._buffers)
        """Partitions still being read."""
        self._waiting = len(self._open)
        """Partitions still being read whose buffer is empty: none may be given before
        they have a head (it could be the earliest)."""
        self._heads: list[tuple[tuple[int, int, int], int]] = []
        """(order, partition) of every non-empty buffer's head."""
        self._most = MOST_BUFFERED if most_buffered is None else most_buffered

    def add(self, record: SinkRecord) -> None:
        """Take the next record of its partition (in offset order)."""
        partition = record.partition
        buffer = self._buffers[partition]
        if not buffer:
            heapq.heappush(self._heads, (record.order, partition))
            if partition in self._open:
                self._waiting -= 1
        buffer.append(record)

    def end(self, partition: int) -> None:
        """The partition has no more records to add."""
        if partition in self._open:
            self._open.discard(partition)
            if not self._buffers[partition]:
                self._waiting -= 1

    def ready(self) -> Iterator[SinkRecord]:
        """The records that can be given now, in merged order."""
        heads, buffers = self._heads, self._buffers
        while heads and not self._waiting:
            _, partition = heapq.heappop(heads)
            buffer = buffers[partition]
            yield buffer.popleft()
            if buffer:
                heapq.heappush(heads, (buffer[0].order, partition))
            elif partition in self._open:
                self._waiting += 1

    def full(self) -> list[int]:
        """Partitions being read whose buffers are full: to pause until :meth:`drained`."""
        return [p for p in self._open if len(self._buffers[p]) >= self._most]

    def drained(self, partition: int) -> bool:
        """Whether a paused partition's buffer is low enough to read on."""
        return len(self._buffers[partition]) < self._most // 2

    @property
    def done(self) -> bool:
        """Whether every partition ended and everything was given."""
        return not self._open and not self._heads
