"""Kafka for ``enforcer remediate`` (docs/remediate.md): a topic read whole or over a
time range, and the transactional producer an apply writes with, both on librdkafka
like the worker. A topic that cannot be read, or a broker that cannot start a
transaction, is one line and exit 2 (:class:`~enforcer.cli.common.UsageError`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from enforcer.cli.common import UsageError

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message

    from enforcer.config.settings import EnforcerSettings
    from enforcer.remediate.history import SinkRecord
    from enforcer.replay.sources.kafka_topic import PartitionRange, Position


_KAFKA_LOG = logging.getLogger("enforcer.remediate.kafka")
# librdkafka's own lines (a broker's retries, a coordinator loading) are not printed:
# what stops a command is said in one line, from the error it meets.
_KAFKA_LOG.addHandler(logging.NullHandler())
_KAFKA_LOG.propagate = False

_CONNECT_S = 15.0
"""How long a reader waits for the cluster's metadata before it says it cannot reach it."""
_STALL_S = 60.0
"""How long a read may go without a record or a partition's end before it gives up."""
_BATCH = 500
"""Records asked of the client at a time (the worker's default batch): ten thousand at a
time cost a plan 2 CPU-µs more per record, the client's messages of a whole batch alive
at once (docs/remediate.md, "What it costs")."""


class _ReadErrors:
    """The reader's ``error_cb``: the last error, and whether it is one waiting will not
    cure (no broker answers at all, a name that does not resolve, refused credentials,
    failed TLS): a command run by hand says so at once rather than after a timeout."""

    def __init__(self) -> None:
        self.last: KafkaError | None = None
        self.final = False

    def __call__(self, error: KafkaError) -> None:
        from confluent_kafka import KafkaError

        self.last = error
        self.final = self.final or error.code() in {
            KafkaError._ALL_BROKERS_DOWN,
            KafkaError._RESOLVE,
            KafkaError._AUTHENTICATION,
            KafkaError.SASL_AUTHENTICATION_FAILED,
            KafkaError._SSL,
        }


class TopicRange:
    """A topic (the sink's by default) read over ``[start, end)`` on every partition,
    open for a ``with`` block: read_committed and without a consumer group (nothing is
    ever committed, so no group's offsets move), with replay's meaning of the range's
    ends (:mod:`enforcer.replay.sources.kafka_topic`). A topic that cannot be read is one
    line, exit 2."""

    def __init__(
        self,
        settings: EnforcerSettings,
        start: Position,
        end: Position,
        topic: str | None = None,
    ) -> None:
        self.topic = topic or settings.sink_topic
        self._settings = settings
        self._start = start
        self._end = end
        self._errors = _ReadErrors()
        self._consumer: Consumer | None = None
        self.ranges: list[PartitionRange] = []
        """The offsets read from each partition (known once open)."""

    def __enter__(self) -> TopicRange:
        from confluent_kafka import Consumer, KafkaException

        from enforcer.config.kafka_security import librdkafka_security

        config: dict[str, Any] = {
            **librdkafka_security(self._settings),
            "bootstrap.servers": self._settings.bootstrap_servers,
            # Required by the client; never joined (the partitions are assigned) and
            # never committed to.
            "group.id": "enforcer-remediate",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            # Records deleted by retention while they are read: go on from the first
            # one left, as a reader starting now would.
            "auto.offset.reset": "earliest",
            # A partition's end (its last stable offset) is said as an event: the end
            # of a range whose last records are transaction markers or aborted.
            "enable.partition.eof": True,
            "logger": _KAFKA_LOG,
            "error_cb": self._errors,
        }
        try:
            self._consumer = Consumer(config)
        except KafkaException as exc:
            from enforcer.live.admin import refused_configuration

            raise UsageError(refused_configuration(exc)) from None
        try:
            self.ranges = self._resolve(self._consumer, self._partitions(self._consumer))
        except BaseException:
            self.__exit__()
            raise
        return self

    def _partitions(self, consumer: Consumer) -> list[int]:
        from confluent_kafka import KafkaException

        where = self._settings.bootstrap_servers
        deadline = time.monotonic() + _CONNECT_S
        while True:
            try:
                metadata = consumer.list_topics(self.topic, timeout=0.5)
                break
            except KafkaException:
                consumer.poll(0)  # serves error_cb: why no broker answered
                if self._errors.final or time.monotonic() > deadline:
                    raise UsageError(self._unreachable()) from None
        found = metadata.topics.get(self.topic)
        if found is None or not found.partitions:
            raise UsageError(f"topic {self.topic!r} not found on {where}")
        if found.error is not None:
            from confluent_kafka import KafkaError

            if found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise UsageError(f"topic {self.topic!r} not found on {where}")
            raise UsageError(f"Kafka refused to read {self.topic!r}: {found.error.str()}")
        return sorted(found.partitions)

    def _unreachable(self) -> str:
        from enforcer.live.admin import why_unreachable

        return why_unreachable(
            self._settings,
            self._errors.last,
            flags="--bootstrap-servers, ENFORCER_BOOTSTRAP_SERVERS",
        )

    def _resolve(self, consumer: Consumer, partitions: list[int]) -> list[PartitionRange]:
        from confluent_kafka import KafkaException, TopicPartition

        from enforcer.replay.sources.kafka_topic import clamped_range

        try:
            # Under read_committed the high end is the last stable offset: records of
            # open transactions wait (librdkafka honours the isolation level here).
            marks = {
                p: consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=_CONNECT_S, cached=False
                )
                for p in partitions
            }
            firsts = {p: low for p, (low, _) in marks.items()}
            lasts = {p: high for p, (_, high) in marks.items()}
            starts = self._offsets(consumer, self._start, partitions, firsts, lasts)
            ends = self._offsets(consumer, self._end, partitions, lasts, lasts)
        except KafkaException as exc:
            why = kafka_message(exc)
            raise UsageError(f"Kafka refused to read {self.topic!r}: {why}") from None
        return [clamped_range(p, firsts[p], lasts[p], starts[p], ends[p]) for p in partitions]

    def _offsets(
        self,
        consumer: Consumer,
        position: Position,
        partitions: list[int],
        default: dict[int, int],
        last: dict[int, int],
    ) -> dict[int, int]:
        from confluent_kafka import TopicPartition

        from enforcer.replay.sources.kafka_topic import record_millis

        if position.offset is not None:
            return dict.fromkeys(partitions, position.offset)
        if position.at is None:
            return dict(default)
        millis = record_millis(position.at)
        found = consumer.offsets_for_times(
            [TopicPartition(self.topic, p, millis) for p in partitions], timeout=_CONNECT_S
        )
        # No record at or after the time (offset -1): the range ends (or starts) at the end.
        return {tp.partition: tp.offset if tp.offset >= 0 else last[tp.partition] for tp in found}

    def records(self) -> Iterator[SinkRecord]:
        """The range's committed records, every partition's merged into one order by
        (time, partition, offset) (:class:`enforcer.remediate.merge.PartitionMerge`): the
        same order whatever the client's fetches return first, so that what is folded
        from them (a plan, its id) depends on the topic only."""
        from confluent_kafka import TopicPartition

        from enforcer.remediate.history import SinkRecord
        from enforcer.remediate.merge import PartitionMerge

        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("TopicRange: use it in a with block")
        ends = {r.partition: r.end for r in self.ranges if r.size}
        if not ends:
            return
        consumer.assign(
            [TopicPartition(self.topic, r.partition, r.start) for r in self.ranges if r.size]
        )
        merge = PartitionMerge(ends)
        paused: set[int] = set()
        new = tuple.__new__  # SinkRecord's fields in order, without its Python constructor
        for batch in self._batches(consumer, ends):
            for partition, message in batch:
                if message is None:
                    merge.end(partition)
                    continue
                headers = message.headers()
                merge.add(
                    new(
                        SinkRecord,
                        (
                            message.key(),
                            message.value(),
                            tuple(headers) if headers else (),
                            partition,
                            message.offset(),
                            message.timestamp()[1],
                        ),
                    )
                )
            yield from merge.ready()
            # A partition far ahead of another waits for it (its records cannot be
            # given before the other's earlier ones): paused, its buffer stays bounded.
            full = [p for p in merge.full() if p not in paused]
            if full:
                consumer.pause([TopicPartition(self.topic, p) for p in full])
                paused.update(full)
            back = [p for p in paused if merge.drained(p)]
            if back:
                consumer.resume([TopicPartition(self.topic, p) for p in back])
                paused.difference_update(back)
        yield from merge.ready()

    def latest_keys(self, per_partition: int) -> list[tuple[bytes, int]]:
        """The keys of each partition's last ``per_partition`` committed records within
        the range, with their partition, for :func:`enforcer.remediate.partitioners.placing`.
        Records without a key are left out, and so are those with an empty one: no subject
        id is empty, and librdkafka's default partitioner (``consistent_random``) places an
        empty key at random, so one would rule out the partitioner that placed the rest."""
        from confluent_kafka import TopicPartition

        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("TopicRange: use it in a with block")
        ends = {r.partition: r.end for r in self.ranges if r.size}
        consumer.assign(
            [
                TopicPartition(self.topic, r.partition, max(r.start, r.end - per_partition))
                for r in self.ranges
                if r.size
            ]
        )
        keys: list[tuple[bytes, int]] = []
        for batch in self._batches(consumer, ends):
            for partition, message in batch:
                key = None if message is None else message.key()
                if key:  # no subject id is empty; librdkafka places an empty key at random
                    keys.append((key, partition))
        return keys

    def _batches(
        self, consumer: Consumer, ends: dict[int, int]
    ) -> Iterator[list[tuple[int, Message | None]]]:
        """The assigned partitions' messages, a batch of the client's at a time: each
        record within its partition's range as ``(partition, message)``, and
        ``(partition, None)`` once the range ends (its last offset read, an offset past
        it, or the client's end of partition after a transaction marker or a gap);
        ``ends`` (partition to end offset) loses each partition as it ends, and the
        reading stops when it is empty. An error, or no progress for
        :data:`_STALL_S`, is one line (:class:`UsageError`)."""
        from confluent_kafka import KafkaError

        eof = KafkaError._PARTITION_EOF
        progress_at = time.monotonic()
        while ends:
            messages = consumer.consume(_BATCH, 1.0)
            if messages:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > _STALL_S:
                stuck = ", ".join(str(p) for p in sorted(ends))
                last = self._errors.last
                said = f" (the client's last error: {last.str()})" if last is not None else ""
                raise UsageError(
                    f"no progress reading {self.topic!r} partitions {stuck} for "
                    f"{_STALL_S:.0f}s{said}"
                )
            batch: list[tuple[int, Message | None]] = []
            for message in messages:
                partition = message.partition()
                end = ends.get(partition) if partition is not None else None
                error = message.error()
                # An error of no partition is the topic's or the client's: no partition
                # would read on, and waiting for one would hide it.
                if (
                    error is not None
                    and error.code() != eof
                    and (partition is None or end is not None)
                ):
                    raise UsageError(f"Kafka refused to read {self.topic!r}: {error.str()}")
                if end is None or partition is None:
                    continue  # past its range: what was fetched with it is left
                if error is not None:  # the partition's end
                    del ends[partition]
                    batch.append((partition, None))
                    continue
                offset = message.offset()
                if offset is None or offset >= end:
                    del ends[partition]
                    batch.append((partition, None))
                    continue
                batch.append((partition, message))
                if offset + 1 >= end:
                    del ends[partition]
                    batch.append((partition, None))
            yield batch

    def __exit__(self, *_: object) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def check_readable(settings: EnforcerSettings) -> None:
    """The broker answers and the sink topic can be read: one line and exit 2 at once
    otherwise (the check `remediate plan` makes by opening its reader), before a
    transactional producer would wait half a minute for a broker."""
    from enforcer.replay.sources.kafka_topic import parse_end, parse_start

    with TopicRange(settings, parse_start("earliest"), parse_end("latest")):
        pass


def check_exposure(settings: EnforcerSettings) -> None:
    """The worker's own checks of the exposure topic (it exists, is compacted and has the
    source's partition count), and no worker running (:func:`~enforcer.live.admin.
    check_exposure_offline`); each failure one line, exit 2."""
    from enforcer.live.admin import TopicSetupError, check_exposure_offline

    try:
        check_exposure_offline(settings)
    except TopicSetupError as exc:
        raise UsageError(str(exc)) from None


def kafka_message(exc: Exception) -> str:
    """A librdkafka error's own one-line text (it names no record data)."""
    error: Any = exc.args[0] if exc.args else None
    text = error.str() if hasattr(error, "str") else type(exc).__name__
    return str(text).replace("\n", " ")


class Transactions:
    """A transactional producer whose id is the plan's: one apply of a plan at a time,
    and a new one fences (and aborts the open transaction of) any earlier."""

    def __init__(self, settings: EnforcerSettings, plan_id: str) -> None:
        from confluent_kafka import KafkaException, Producer

        from enforcer.config.kafka_security import librdkafka_security

        config: dict[str, Any] = {
            **librdkafka_security(settings),
            "bootstrap.servers": settings.bootstrap_servers,
            "transactional.id": "enforcer-remediate-" + plan_id.removeprefix("sha256:")[:32],
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # librdkafka's own lines go to logging (silenced above), not straight to stderr.
            "logger": _KAFKA_LOG,
        }
        self._topic = settings.sink_topic
        try:
            self._producer = Producer(config)
        except KafkaException as exc:
            from enforcer.live.admin import refused_configuration

            raise UsageError(refused_configuration(exc)) from None
        try:
            self._producer.init_transactions(30)
        except KafkaException as exc:
            raise UsageError(
                f"cannot start a transaction on Kafka at {settings.bootstrap_servers}: "
                f"{kafka_message(exc)}"
            ) from None

    def commit(
        self,
        policy_version: str,
        retractions: list[Any],
        topic: str,
        records: list[tuple[int, bytes, bytes | None]],
    ) -> None:
        """Write ``retractions`` to the sink and the (partition, key, value) ``records``
        to ``topic`` in one transaction, committed before return."""
        from enforcer.exposure.retract import retraction_value
        from enforcer.remediate.apply import retraction_headers

        headers: list[tuple[str, str | bytes | None]] = list(retraction_headers(policy_version))
        producer = self._producer
        producer.begin_transaction()
        for retraction in retractions:
            self._produce(
                self._topic,
                retraction.subject_id.encode("utf-8", "surrogatepass"),
                retraction_value(retraction),
                headers=headers,
            )
        for partition, key, value in records:
            self._produce(topic, key, value, partition=partition)
        producer.commit_transaction(60)

    def _produce(self, topic: str, key: bytes, value: bytes | None, **more: Any) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, **more)
                return
            except BufferError:
                self._producer.poll(0.1)

    def close(self) -> None:
        """Deliver what is queued (nothing outside a transaction)."""
        self._producer.flush(5)
