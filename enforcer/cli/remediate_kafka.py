"""Kafka for ``enforcer remediate`` (docs/remediate.md): a topic read whole or over a
time range (replay's reader: read_committed, no consumer group), and the transactional
producer an apply writes with. A topic that cannot be read, or a broker that cannot
start a transaction, is one line and exit 2 (:class:`~enforcer.cli.common.UsageError`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from enforcer.cli.common import UsageError

if TYPE_CHECKING:
    from enforcer.config.settings import EnforcerSettings
    from enforcer.remediate.history import SinkRecord
    from enforcer.replay.sources.kafka_topic import Position, TopicReader


_KAFKA_LOG = logging.getLogger("enforcer.remediate.kafka")
# The producer's librdkafka lines (a broker's retries, a coordinator loading) are not
# printed: what stops an apply is said in one line, from the exception it raises.
_KAFKA_LOG.addHandler(logging.NullHandler())
_KAFKA_LOG.propagate = False
# aiokafka logs connection failures itself; the command says it once, in one line (as
# replay does, enforcer/replay/run.py).
logging.getLogger("aiokafka").addHandler(logging.NullHandler())


class TopicRange:
    """A reader of a topic (the sink's by default), open for a ``with`` block; a topic
    that cannot be read is one line, exit 2."""

    def __init__(
        self,
        settings: EnforcerSettings,
        start: Position,
        end: Position,
        topic: str | None = None,
    ) -> None:
        from enforcer.config.kafka_security import aiokafka_security
        from enforcer.replay.sources.kafka_topic import TopicReader

        self._runner = asyncio.Runner()
        self.reader = TopicReader(
            self._runner,
            settings.bootstrap_servers,
            topic or settings.sink_topic,
            start,
            end,
            client_options=aiokafka_security(settings),
        )

    def __enter__(self) -> TopicReader:
        from enforcer.replay.sources.kafka_topic import TopicReadError

        try:
            self.reader.open()
        except TopicReadError as exc:
            self.__exit__()
            raise UsageError(str(exc)) from None
        return self.reader

    def __exit__(self, *_: object) -> None:
        try:
            self.reader.close()
        finally:
            self._runner.close()


def check_readable(settings: EnforcerSettings) -> None:
    """The broker answers and the sink topic can be read: one line and exit 2 within a
    second or so otherwise (the check `remediate plan` makes by opening its reader),
    before a transactional producer would wait half a minute for a broker."""
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


def sink_records(reader: TopicReader) -> Iterator[SinkRecord]:
    from enforcer.remediate.history import SinkRecord
    from enforcer.replay.sources.kafka_topic import TopicReadError

    try:
        for m in reader.messages():
            # aiokafka gives (str, bytes) pairs already: no copy per header.
            yield SinkRecord(m.key, m.value, tuple(m.headers), m.partition, m.offset, m.timestamp)
    except TopicReadError as exc:
        raise UsageError(str(exc)) from None


def messages(reader: TopicReader) -> Iterator[Any]:
    from enforcer.replay.sources.kafka_topic import TopicReadError

    try:
        yield from reader.messages()
    except TopicReadError as exc:
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
