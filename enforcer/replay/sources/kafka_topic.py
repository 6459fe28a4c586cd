"""Records from a Kafka topic, for replay (docs/contract.md: command line): every partition, a
chosen range.

Read as a ``read_committed`` consumer without a consumer group: nothing is ever
committed, so no live group's offsets move. ``--start`` is ``earliest``, an offset
(the same on every partition) or an RFC 3339 time; ``--end`` is ``latest``, an offset
or a time. A time means the first offset whose Kafka record timestamp is at or after
it (``offsets_for_times``): the range is ``[start, end)`` on each partition, and
``latest`` is the end as the replay starts, so records produced meanwhile are left out.

The reader is synchronous (replay is): it drives aiokafka through an
:class:`asyncio.Runner` that the caller owns and may share with a topic sink.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from enforcer.core.models import parse_rfc3339
from enforcer.core.step import InputRecord, Source

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

_FETCH_TIMEOUT_MS = 1000

# aiokafka logs connection failures itself; the command line says it once, in one line
# (every command reading a topic with it: replay, a ledger topic for remediate too).
logging.getLogger("aiokafka").addHandler(logging.NullHandler())


class TopicReadError(RuntimeError):
    """The topic cannot be read as asked (the message says why, in one line)."""


@dataclass(frozen=True)
class Position:
    """One end of a replay range, as given on the command line."""

    text: str
    offset: int | None = None
    at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """``earliest`` or ``latest``: the partition's own end."""
        return self.offset is None and self.at is None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Kafka record times are milliseconds since then: no record is earlier, and a broker
asked for the offset of an earlier time refuses the request."""
BEFORE_EPOCH = "a time before 1970-01-01T00:00:00Z, where Kafka record times start"


def record_millis(at: datetime) -> int:
    """The Kafka record time (milliseconds since 1970) of the first record at or after
    ``at``: a time between two milliseconds is asked as the later one, so that a record
    before the time is never taken as at or after it. In whole numbers: the float of
    ``timestamp()`` times 1000 falls a millisecond short for some times."""
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return -(-micros // 1000)


def record_time(text: str) -> datetime:
    """An RFC 3339 time a topic can be read from or up to; ``ValueError`` for text that
    is not one, or a time before 1970-01-01T00:00:00Z."""
    at = parse_rfc3339(text)
    if at < EPOCH:
        raise ValueError(BEFORE_EPOCH)
    return at


def _position(text: str, open_word: str) -> Position:
    value = text.strip()
    if value.lower() == open_word:
        return Position(open_word)
    if value.isdigit():
        return Position(value, offset=int(value))
    try:
        at = parse_rfc3339(value)
    except ValueError:
        raise ValueError(
            f"expected {open_word}, an offset or an RFC 3339 time "
            f"(like 2019-10-08T00:00:00Z), not {value!r}"
        ) from None
    if at < EPOCH:
        raise ValueError(BEFORE_EPOCH)
    return Position(value, at=at)


def parse_start(text: str) -> Position:
    """``earliest``, an offset, or an RFC 3339 time; ``ValueError`` otherwise."""
    return _position(text, "earliest")


def parse_end(text: str) -> Position:
    """``latest``, an offset (exclusive), or an RFC 3339 time; ``ValueError`` otherwise."""
    return _position(text, "latest")


@dataclass(frozen=True)
class PartitionRange:
    """The offsets ``[start, end)`` to replay from one partition."""

    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        """Offsets in the range (aborted records and transaction markers included)."""
        return self.end - self.start


def clamped_range(partition: int, first: int, last: int, start: int, end: int) -> PartitionRange:
    """The range ``[start, end)`` asked of a partition holding ``[first, last)``, kept
    inside it: a start before the first offset reads from the first, an end past the
    last (the last stable offset, read_committed) stops there, and an end before the
    start reads nothing."""
    start = min(max(start, first), last)
    return PartitionRange(partition, start, min(max(end, start), last))


class TopicReader:
    """Reads a range of one topic: :meth:`open`, then :meth:`records`, then :meth:`close`."""

    def __init__(
        self,
        runner: asyncio.Runner,
        bootstrap_servers: str,
        topic: str,
        start: Position,
        end: Position,
        *,
        stall_timeout_s: float = 60.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._runner = runner
        self._bootstrap = bootstrap_servers
        self._options = dict(client_options or {})  # TLS/SASL (enforcer.config.kafka_security)
        self.topic = topic
        self._start = start
        self._end = end
        self._stall_timeout_s = stall_timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self.ranges: list[PartitionRange] = []

    def open(self) -> list[PartitionRange]:
        """Connect, find the partitions and resolve the range on each."""
        if self._start.at and self._end.at and self._start.at > self._end.at:
            raise TopicReadError(f"--start {self._start.text} is after --end {self._end.text}")
        self.ranges = self._runner.run(self._open())
        return self.ranges

    async def _open(self) -> list[PartitionRange]:
        # aiokafka is imported here so that the command line starts without it.
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.errors import KafkaError

        partitions = await self._partitions()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            request_timeout_ms=15000,
            **self._options,
        )
        try:
            await consumer.start()
            self._consumer = consumer
            tps = [TopicPartition(self.topic, p) for p in partitions]
            return await self._resolve(consumer, tps)
        except KafkaError as exc:
            raise TopicReadError(f"Kafka refused to read {self.topic!r}: {exc}") from None

    async def _partitions(self) -> list[int]:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaConnectionError

        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, request_timeout_ms=15000, **self._options
        )
        try:
            await admin.start()
        except KafkaConnectionError:
            await admin.close()
            raise TopicReadError(
                f"cannot reach Kafka at {self._bootstrap} (--bootstrap-servers, "
                "ENFORCER_BOOTSTRAP_SERVERS)"
            ) from None
        try:
            [described] = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        if described["error_code"] != 0 or not described["partitions"]:
            raise TopicReadError(f"topic {self.topic!r} not found on {self._bootstrap}")
        return sorted(int(p["partition"]) for p in described["partitions"])

    async def _resolve(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]
    ) -> list[PartitionRange]:
        first = await consumer.beginning_offsets(tps)
        # Under read_committed this is the last stable offset: open transactions wait.
        last = await consumer.end_offsets(tps)
        starts = await self._offsets(consumer, self._start, tps, first, last)
        ends = await self._offsets(consumer, self._end, tps, last, last)
        return [
            clamped_range(tp.partition, first[tp], last[tp], starts[tp], ends[tp]) for tp in tps
        ]

    @staticmethod
    async def _offsets(
        consumer: AIOKafkaConsumer,
        position: Position,
        tps: list[TopicPartition],
        default: dict[TopicPartition, int],
        last: dict[TopicPartition, int],
    ) -> dict[TopicPartition, int]:
        if position.offset is not None:
            return dict.fromkeys(tps, position.offset)
        if position.at is None:
            return dict(default)
        millis = record_millis(position.at)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, millis))
        # No record at or after the time: the range ends (or starts) at the end.
        return {tp: found[tp].offset if found.get(tp) else last[tp] for tp in tps}

    @property
    def total(self) -> int:
        """Offsets to read over all partitions."""
        return sum(r.size for r in self.ranges)

    def records(self) -> Iterator[InputRecord]:
        """Yield the range's committed records, partition order kept."""
        for message in self.messages():
            yield input_record(message)

    def messages(self) -> Iterator[ConsumerRecord[bytes, bytes]]:
        """Yield the range's committed records as the client reads them (with their
        Kafka timestamps), partition order kept."""
        from aiokafka import TopicPartition

        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("TopicReader.open() first")
        wanted = {TopicPartition(self.topic, r.partition): r for r in self.ranges if r.size}
        if not wanted:
            return
        self._runner.run(_assign(consumer, {tp: r.start for tp, r in wanted.items()}))
        remaining = {tp: r.end for tp, r in wanted.items()}
        progress_at = time.monotonic()
        while remaining:
            batches = self._runner.run(consumer.getmany(*remaining, timeout_ms=_FETCH_TIMEOUT_MS))
            for tp, messages in batches.items():
                end = remaining.get(tp)
                for message in messages:
                    if end is None or message.offset >= end:
                        break
                    yield message
            if batches:
                progress_at = time.monotonic()
            for tp in self._runner.run(_finished(consumer, remaining)):
                del remaining[tp]
                progress_at = time.monotonic()
            if remaining and time.monotonic() - progress_at > self._stall_timeout_s:
                stuck = ", ".join(f"{tp.partition}" for tp in remaining)
                raise TopicReadError(
                    f"no progress reading {self.topic!r} partitions {stuck} "
                    f"for {self._stall_timeout_s:.0f}s"
                )

    def close(self) -> None:
        """Disconnect. Nothing was committed, so there is nothing to undo."""
        if self._consumer is not None:
            self._runner.run(self._consumer.stop())
            self._consumer = None


# aiokafka wants its consumer's assignment changed inside the running loop.
async def _assign(consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int]) -> None:
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)


async def _finished(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> list[TopicPartition]:
    """Partitions read up to their end; they are paused."""
    # The position moves past transaction markers and aborted records too.
    done = [tp for tp, end in ends.items() if await consumer.position(tp) >= end]
    if done:
        consumer.pause(*done)
    return done


def input_record(message: ConsumerRecord[bytes, bytes]) -> InputRecord:
    """The step's input for a record read from the topic, as the live engine makes it: a
    header with a null value stays null (a null ``traceparent`` is skipped, not taken for
    an invalid one)."""
    return InputRecord(
        message.key,
        message.value,
        tuple((str(k), None if v is None else bytes(v)) for k, v in message.headers),
        Source(message.topic, message.partition, message.offset),
    )
