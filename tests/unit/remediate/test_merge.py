"""A topic's partitions merged into one order (enforcer/remediate/merge.py): the same
order whatever the interleaving the partitions' records arrive in, and a bounded buffer
per partition."""

from __future__ import annotations

import heapq
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.remediate.history import SinkRecord
from enforcer.remediate.merge import PartitionMerge

partition_times = st.lists(
    st.lists(st.integers(min_value=0, max_value=20), max_size=8), min_size=1, max_size=4
)


def _records(times: list[list[int]]) -> list[list[SinkRecord]]:
    """Each partition's records in offset order; times may go backwards (clocks)."""
    return [
        [SinkRecord(None, None, (), p, offset, at) for offset, at in enumerate(partition)]
        for p, partition in enumerate(times)
    ]


def _arrive(parts: list[list[SinkRecord]], rnd: random.Random) -> list[SinkRecord]:
    """The records of every partition merged through one random arrival order (each
    partition's own order kept), each partition ended at a random moment after its
    last record, the ready records taken now and then."""
    merge = PartitionMerge(range(len(parts)))
    queues = {p: list(records) for p, records in enumerate(parts)}
    given_back: list[SinkRecord] = []
    while queues:
        partition = rnd.choice(sorted(queues))
        queue = queues[partition]
        if queue:
            merge.add(queue.pop(0))
        else:
            merge.end(partition)
            del queues[partition]
        if rnd.random() < 0.5:
            given_back.extend(merge.ready())
    given_back.extend(merge.ready())
    assert merge.done
    return given_back


@settings(max_examples=300, deadline=None)
@given(partition_times, st.randoms(use_true_random=False))
def test_the_merged_order_does_not_depend_on_the_arrival_order(
    times: list[list[int]], rnd: random.Random
) -> None:
    """Whatever the interleaving, the records come back as the merge of the partitions
    by (time, partition, offset) at their heads: each once, each partition's in order."""
    parts = _records(times)
    merged = list(heapq.merge(*parts, key=lambda r: r.order))
    assert _arrive(parts, rnd) == merged


def test_a_record_waits_for_every_open_partition_to_have_a_head() -> None:
    """A partition not yet read may hold an earlier record: nothing is given before it
    has one, or has ended."""
    merge = PartitionMerge([0, 1])
    late = SinkRecord(None, None, (), 0, 0, 30)
    early = SinkRecord(None, None, (), 1, 0, 20)
    merge.add(late)
    assert list(merge.ready()) == []
    merge.add(early)
    assert list(merge.ready()) == [early]  # partition 1 may have more before 30
    merge.end(1)
    assert list(merge.ready()) == [late]
    merge.end(0)
    assert merge.done


def test_a_partition_far_ahead_is_full_until_its_buffer_drains() -> None:
    merge = PartitionMerge([0, 1], most_buffered=4)
    for offset in range(4):
        merge.add(SinkRecord(None, None, (), 0, offset, 100 + offset))
    assert merge.full() == [0] and not merge.drained(0)
    merge.add(SinkRecord(None, None, (), 1, 0, 102))
    merge.end(1)
    assert [r.timestamp_ms for r in merge.ready()] == [100, 101, 102, 102, 103]
    assert merge.full() == [] and merge.drained(0)
