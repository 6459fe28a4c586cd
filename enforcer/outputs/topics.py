"""Replay outputs to Kafka topics instead of files: the live topic names with a prefix.

``--output-topic-prefix replay.2019-10.`` writes forwarded records to
``replay.2019-10.audience.building``, violations to ``replay.2019-10.enforcer.violations``
and dead letters to ``replay.2019-10.enforcer.deadletter`` (the names come from the
settings), exactly as the live agent would write them: same keys, values and headers.
Missing topics are created with the source's partition count; existing ones are
appended to. Writes are idempotent but not transactional: a replay that fails half
way leaves what it wrote, and a rerun appends again (use a fresh prefix per run).
A prefix that would name a live topic is refused: replay never writes to live topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from enforcer.core.step import Headers, Outcome
from enforcer.outputs.records import KafkaOutcomeWriter, OutputTopics

_BATCH = 2000


class TopicOutputError(RuntimeError):
    """The output topics cannot be used (the message says why, in one line)."""


def prefixed_topics(prefix: str, live: OutputTopics, protected: Iterable[str]) -> OutputTopics:
    """The output topics for ``prefix``; refuses names that are live topics."""
    if not prefix.strip():
        raise TopicOutputError("--output-topic-prefix must not be empty")
    topics = OutputTopics(prefix + live.sink, prefix + live.violations, prefix + live.deadletter)
    clash = sorted({topics.sink, topics.violations, topics.deadletter} & set(protected))
    if clash:
        raise TopicOutputError(
            f"--output-topic-prefix {prefix!r} would write to live topic {clash[0]!r}"
        )
    return topics


class TopicOutputs:
    """Sends each outcome's records to the prefixed topics, in batches.

    Synchronous like replay: it drives aiokafka through the caller's runner.
    """

    def __init__(
        self,
        runner: asyncio.Runner,
        bootstrap_servers: str,
        topics: OutputTopics,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._runner = runner
        self._bootstrap = bootstrap_servers
        self._options = dict(client_options or {})  # TLS/SASL (enforcer.config.kafka_security)
        self.topics = topics
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[Outcome] = []
        self.records_sent = 0

    def open(self, partitions: int) -> list[str]:
        """Create missing output topics; start the producer. Returns the topics created."""
        return self._runner.run(self._open(partitions))

    async def _open(self, partitions: int) -> list[str]:
        names = sorted({self.topics.sink, self.topics.violations, self.topics.deadletter})
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, request_timeout_ms=15000, **self._options
        )
        try:
            await admin.start()
        except KafkaConnectionError:
            raise TopicOutputError(f"cannot reach Kafka at {self._bootstrap}") from None
        try:
            missing = [name for name in names if name not in set(await admin.list_topics())]
            if missing:
                await admin.create_topics([NewTopic(name, partitions, 1) for name in missing])
        except KafkaError as exc:
            raise TopicOutputError(f"cannot create the output topics: {exc}") from None
        finally:
            await admin.close()
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **self._options,
        )
        await producer.start()
        self._producer = producer
        return missing

    def write(self, outcome: Outcome) -> None:
        """Queue one outcome; a full batch is sent and waited for."""
        self._pending.append(outcome)
        if len(self._pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Send everything queued and wait until Kafka has it."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._runner.run(self._send(pending))

    async def _send(self, outcomes: list[Outcome]) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("TopicOutputs.open() first")

        async def send(
            topic: str, key: bytes | None, value: bytes | None, headers: Headers, _: str | None
        ) -> Awaitable[Any]:
            delivery: Awaitable[Any] = await producer.send(
                topic, value=value, key=key, headers=list(headers)
            )
            return delivery

        writer = KafkaOutcomeWriter(self.topics, send)
        deliveries: list[Awaitable[Any]] = []
        for outcome in outcomes:
            deliveries += await writer.write(outcome, None)
        try:
            await asyncio.gather(*deliveries)
        except KafkaError as exc:
            raise TopicOutputError(f"could not write replay outputs: {exc}") from None
        self.records_sent += len(deliveries)

    def close(self) -> None:
        """Send what is queued and stop the producer."""
        try:
            self.flush()
        finally:
            if self._producer is not None:
                self._runner.run(self._producer.stop())
                self._producer = None

    def __enter__(self) -> TopicOutputs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self._producer is not None:
            self._runner.run(self._producer.stop())
            self._producer = None
