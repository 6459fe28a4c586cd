"""``enforcer remediate``'s Kafka reader, the parts that need no broker."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition

from enforcer.cli.remediate_kafka import TopicRange
from enforcer.config.settings import EnforcerSettings
from enforcer.replay.sources.kafka_topic import parse_end, parse_start

# 2039-03-08T19:46:13.411Z: a time whose float seconds times 1000 fall just short of it.
_MILLIS = 2_183_226_373_411


class _Consumer:
    """Answers ``offsets_for_times`` with the offset of each partition's time, noting the
    times asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def offsets_for_times(self, tps: list[TopicPartition], timeout: float) -> list[Any]:
        self.asked.extend(tp.offset for tp in tps)
        return [TopicPartition(tp.topic, tp.partition, 5) for tp in tps]


def test_a_time_range_asks_kafka_for_the_times_given_to_the_millisecond() -> None:
    """``--since`` and ``--until`` are the first record at or after each time: asked for
    the millisecond before (a float's rounding), the plan would read a record from
    before ``--since`` and leave out one before ``--until``."""
    settings = EnforcerSettings(sink_topic="sink")
    consumer = _Consumer()
    since = parse_start("2039-03-08T19:46:13.411Z")
    until = parse_end("2039-03-08T19:46:13.4105Z")
    reader = TopicRange(settings, since, until)
    for position in (since, until):
        found = reader._offsets(consumer, position, [0, 1], {0: 0, 1: 0}, {0: 9, 1: 9})  # type: ignore[arg-type]
        assert found == {0: 5, 1: 5}
    assert consumer.asked == [_MILLIS] * 4
