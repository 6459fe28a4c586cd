"""``enforcer remediate``'s Kafka reader, the parts that need no broker."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import TopicPartition

from enforcer.cli.common import UsageError
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


class _Message:
    """A consumed record (``key``, ``offset``), a partition's end (``eof``), or an error
    (``code``; of no partition with ``partition`` None)."""

    def __init__(
        self,
        partition: int | None,
        offset: int,
        key: bytes | None,
        eof: bool = False,
        code: int | None = None,
    ) -> None:
        self._partition, self._offset, self._key, self._eof = partition, offset, key, eof
        self._code = code

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def error(self) -> Any:
        from confluent_kafka import KafkaError

        if self._code is not None:
            return KafkaError(self._code)
        return KafkaError(KafkaError._PARTITION_EOF) if self._eof else None


class _Reader:
    """A consumer that gives its messages in one batch, then nothing."""

    def __init__(self, messages: list[_Message]) -> None:
        self._messages = messages
        self.assigned: list[TopicPartition] = []

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def consume(self, count: int, timeout: float) -> list[_Message]:
        batch, self._messages = self._messages, []
        return batch


def _reading(messages: list[_Message], ends: dict[int, int]) -> TopicRange:
    """A range of the topic ``src`` over ``ends`` (partition to end offset), whose
    client gives ``messages`` once, then nothing."""
    from enforcer.replay.sources.kafka_topic import PartitionRange

    reader = TopicRange(
        EnforcerSettings(source_topic="src"), parse_start("earliest"), parse_end("latest"), "src"
    )
    reader._consumer = _Reader(messages)  # type: ignore[assignment]
    reader.ranges = [PartitionRange(p, 0, end) for p, end in ends.items()]
    return reader


def _latest_keys(messages: list[_Message], ends: dict[int, int]) -> list[tuple[bytes, int]]:
    return _reading(messages, ends).latest_keys(200)


def test_the_latest_keys_leave_out_records_without_a_key_or_with_an_empty_one() -> None:
    """librdkafka's default partitioner places a record with an empty key at random, and
    no subject id is empty: such a key would rule out crc32 where it placed the rest."""
    messages = [
        _Message(0, 0, b"acct-1"),
        _Message(0, 1, None),
        _Message(0, 2, b""),
        _Message(1, 0, b"acct-2"),
    ]
    assert _latest_keys(messages, {0: 3, 1: 1}) == [(b"acct-1", 0), (b"acct-2", 1)]


def test_the_latest_keys_end_at_a_partitions_end_after_a_marker_or_a_gap() -> None:
    """A partition whose last offsets are a transaction's marker (or compacted away)
    ends where the client says it does, not at a record at its last offset."""
    messages = [_Message(0, 3, b"acct-1"), _Message(0, 9, b"", eof=True)]
    assert _latest_keys(messages, {0: 9}) == [(b"acct-1", 0)]


def test_an_error_of_no_partition_ends_the_reading_at_once_saying_it() -> None:
    """An error the client gives for the topic, not one of its partitions (a topic the
    credentials may not read), is one line at once: no partition would ever read on,
    and waiting for one would only say, a minute later, that nothing moved."""
    from confluent_kafka import KafkaError

    messages = [
        _Message(0, 0, b"acct-1"),
        _Message(None, 0, None, code=KafkaError.TOPIC_AUTHORIZATION_FAILED),
    ]
    with pytest.raises(UsageError, match=r"^Kafka refused to read 'src': .*[Aa]uthoriz"):
        _latest_keys(messages, {0: 5})


def test_a_reading_that_stalls_names_the_clients_last_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No progress for the stall limit is one line, with what the client last reported
    (a broker gone, say): the cause, where there is one, not only the symptom."""
    from confluent_kafka import KafkaError

    from enforcer.cli import remediate_kafka

    monkeypatch.setattr(remediate_kafka, "_STALL_S", -1.0)  # stalled at the first empty batch
    reader = _reading([], {0: 5, 1: 5})
    with pytest.raises(UsageError, match=r"partitions 0, 1 for -1s$"):
        reader.latest_keys(200)
    reader = _reading([], {0: 5})
    reader._errors(KafkaError(KafkaError._TRANSPORT))
    with pytest.raises(UsageError, match=r"partitions 0 for -1s \(the client's last error: .+\)$"):
        reader.latest_keys(200)
