"""A sink topic read for a plan comes back as one history merged by (time, partition,
offset), whatever the client fetches first, and a partition far ahead of another is
paused rather than buffered whole (enforcer/remediate/merge.py, docs/remediate.md)."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from enforcer.cli.common import settings_from
from enforcer.cli.remediate_kafka import TopicRange
from enforcer.remediate import merge
from enforcer.replay.sources.kafka_topic import parse_end, parse_start
from enforcer.testing.topics import TopicFactory

BASE_MS = 1_764_500_000_000
PER_PARTITION = 40


async def test_partitions_are_merged_by_time_with_a_small_buffer(
    kafka_bootstrap: str, new_topic: TopicFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partition 0 holds only later records than partition 1; with room for 3 records
    a partition, partition 0 is paused while partition 1 is read, and every record
    comes back once, in time order."""
    topic = await new_topic("remediate-merge", partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(PER_PARTITION):
            await producer.send_and_wait(
                topic, b"late", key=b"k", partition=0, timestamp_ms=BASE_MS + 10_000 + i
            )
            await producer.send_and_wait(
                topic, b"early", key=b"k", partition=1, timestamp_ms=BASE_MS + i
            )
    finally:
        await producer.stop()
    monkeypatch.setattr(merge, "MOST_BUFFERED", 3)
    settings = settings_from(bootstrap_servers=kafka_bootstrap, sink_topic=topic)
    with TopicRange(settings, parse_start("earliest"), parse_end("latest")) as history:
        records = list(history.records())
    assert len(records) == 2 * PER_PARTITION
    assert len({(r.partition, r.offset) for r in records}) == 2 * PER_PARTITION
    assert [r.order for r in records] == sorted(r.order for r in records)
    assert [r.value for r in records] == [b"early"] * PER_PARTITION + [b"late"] * PER_PARTITION
