"""The live enforcer: a faust app, built by a factory from settings.

Thin wiring of source topic → decision step → output topics. The per-record
decision is :class:`enforcer.step.Step`, the same code replay and explain run.

Exactly once. faust-streaming's ``exactly_once`` mode gives each source partition
a transactional producer and commits consumed offsets in that transaction, but its
periodic commit can run while an agent is between sending a record's outputs and
acknowledging the record, and then commits the outputs of a record whose offset it
does not commit (faust-streaming/faust#606): after a crash that record is processed
again and its outputs appear twice. Here a :class:`TransactionGate` makes a batch
(decide, send, wait for delivery, acknowledge) and a commit mutually exclusive, and
a batch that fails part-way poisons the gate so nothing after it is committed: the
open transactions are aborted when the next producer with the same transactional id
starts, and the records are decided again. Outputs go through the source
partition's transactional producer explicitly, since ``Topic.send`` to a topic the
app does not consume bypasses the transaction (faust-streaming/faust#177).

Rebalances. faust forgets the acknowledged offsets of revoked partitions before it
commits them, which duplicates the outputs of partitions a worker keeps (#323, #502,
#517); and a committed transaction's offsets are readable only once the broker has
written its markers. So at each revocation :class:`EnforcerApp` commits first and lets
the rebalance go on only when the group's committed offsets cover every acknowledged
record (:meth:`EnforcerApp._commit_before_revoke`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types.enums import ProcessingGuarantee

from enforcer.clock import Clock
from enforcer.fingerprint import Fingerprinter
from enforcer.guard import DeadLetterGuard, DeadLetterRateExceededError
from enforcer.kafka_security import aiokafka_security, faust_credentials
from enforcer.policy.compiled import Policy
from enforcer.settings import EnforcerSettings
from enforcer.sinks.kafka import KafkaOutcomeWriter, OutputTopics
from enforcer.step import Headers, InputRecord, Outcome, OutcomeKind, Source, Step

log = logging.getLogger("enforcer.agent")

OutcomeObserver = Callable[[Sequence[Outcome], float], None]
"""Called after each committed-to-be batch: the outcomes and the batch's start time."""

UntilCommitted = Callable[[dict[tuple[str, int], int]], Awaitable[None]]
"""Waits until the group's committed offset of each (topic, partition), as a new owner
would read it, has reached the given one; raises :class:`TimeoutError` otherwise."""

# How long a rebalance waits for this worker's committed offsets to become readable;
# the broker writes transaction markers within milliseconds unless it is in trouble.
OFFSETS_VISIBLE_TIMEOUT_S = 15.0


class TransactionGate:
    """Keeps faust's offset commits out of the middle of a batch."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.poisoned: BaseException | None = None
        # (topic, partition) -> the offset after the last record acknowledged there.
        self.acknowledged: dict[tuple[str, int], int] = {}

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Hold off commits while a batch runs; a failure poisons the gate."""
        # The try also covers waiting for the lock. A batch abandoned there (the agent
        # cancelled at shutdown while a commit holds the lock) has sent nothing, but
        # faust's ``take_events`` still acknowledges its events when the generator is
        # closed; an unpoisoned gate would then let the final commit skip them.
        try:
            async with self._lock:
                yield
        except BaseException as exc:
            self.poisoned = exc
            raise

    def guard_commit(
        self, commit: Callable[..., Awaitable[bool]]
    ) -> Callable[..., Awaitable[bool]]:
        """Wrap faust's ``Consumer.commit`` so it waits for batches and stops when poisoned."""

        async def gated_commit(*args: Any, **kwargs: Any) -> bool:
            async with self._lock:
                if self.poisoned is not None:
                    log.warning("not committing: a batch failed (%s)", type(self.poisoned).__name__)
                    return False
                return await commit(*args, **kwargs)

        return gated_commit


class EnforcerApp(faust.App):
    """A faust app whose consumer commits only through the :class:`TransactionGate`.

    The consumer must be made lazily, as faust does: whether it uses transactions is
    fixed when it is created, and that depends on running inside a worker.
    """

    gate: TransactionGate
    until_committed: UntilCommitted

    def _new_consumer(self) -> Any:
        # Any: faust's ConsumerT declares neither attribute as assignable.
        consumer: Any = super()._new_consumer()
        consumer.commit = self.gate.guard_commit(consumer.commit)
        consumer.on_partitions_revoked = self._commit_before_revoke(
            consumer.on_partitions_revoked, consumer.commit
        )
        return consumer

    def _commit_before_revoke(
        self,
        on_partitions_revoked: Callable[[set[Any]], Awaitable[None]],
        commit: Callable[[], Awaitable[bool]],
    ) -> Callable[[set[Any]], Awaitable[None]]:
        """Commit what was acknowledged before faust forgets it at a rebalance.

        faust's ``Consumer.on_partitions_revoked`` first drops its record of acknowledged
        offsets for every revoked partition (with the eager protocol: all of them) and
        only then commits, so the outputs sent for those records stay in the open
        transaction without their offsets. For a partition the worker keeps, it then
        seeks back to the committed offset, decides the same records again and commits
        both copies together: duplicates behind ``read_committed``
        (faust-streaming/faust#323, #502, #517). Committing first leaves nothing to drop.
        The commit waits for a batch in flight (the gate), and no other task runs
        between its return and faust dropping the offsets (no ``await`` in between).

        Then, before the rebalance may go on, the offsets committed for every revoked
        partition must be readable. A transaction's commit returns before the broker
        has written its markers, and until then the group's committed offset reads as
        the one before; aiokafka cannot ask for stable offsets (KIP-447). A partition
        this worker keeps is sought to that offset right after the rebalance, and the
        records in between would be decided and committed a second time. (A partition
        that moves is safe: its new owner's transactional producer cannot start before
        the old transaction is complete.)
        """

        async def revoke(revoked: set[Any]) -> None:
            try:
                await commit()
            except Exception as exc:
                # The outputs of acknowledged records may now be in open transactions
                # whose offsets faust is about to forget: nothing may commit after this.
                await self._fail_closed("commit before rebalance failed", exc)
            await on_partitions_revoked(revoked)
            if self.gate.poisoned is None and not self.should_stop:
                try:
                    await self._until_committed(revoked)
                except Exception as exc:
                    await self._fail_closed("committed offsets not confirmed", exc)

        return revoke

    async def _until_committed(self, revoked: set[Any]) -> None:
        """Wait until the group's committed offsets cover what this worker acknowledged."""
        acknowledged = self.gate.acknowledged
        wanted = {
            (tp.topic, tp.partition): acknowledged[(tp.topic, tp.partition)]
            for tp in revoked
            if (tp.topic, tp.partition) in acknowledged
        }
        if wanted:
            await self.until_committed(wanted)

    async def _fail_closed(self, what: str, exc: Exception) -> None:
        self.gate.poisoned = exc
        log.critical("enforcer stopping: %s (%s)", what, type(exc).__name__)
        await self.crash(exc)


def _headers(raw: Any) -> Headers:
    if not raw:
        return ()
    items = raw.items() if isinstance(raw, dict) else raw
    return tuple((str(k), v if isinstance(v, bytes) else b"") for k, v in items)


class BatchProcessor:
    """Decides a batch of events and sends their outputs, inside the gate."""

    def __init__(
        self,
        app: faust.App,
        step: Step,
        writer: KafkaOutcomeWriter,
        guard: DeadLetterGuard,
        gate: TransactionGate,
        clock: Callable[[], float],
    ) -> None:
        self._app = app
        self._step = step
        self._writer = writer
        self._guard = guard
        self._gate = gate
        self._clock = clock
        # faust types this setting as the enum class, not a member: compare as objects.
        guarantee: object = app.conf.processing_guarantee
        self._transactional = guarantee == ProcessingGuarantee.EXACTLY_ONCE
        self.observers: list[OutcomeObserver] = []

    def _transactional_id(self, topic: str, partition: int) -> str | None:
        if not self._transactional:
            return None
        group = self._app.assignor.group_for_topic(topic)
        return f"{self._app.conf.id}-{group}-{partition}"

    async def process(
        self, events: Sequence[faust.EventT[Any]], stream: faust.StreamT[Any]
    ) -> None:
        """Decide, send, wait for delivery, acknowledge: all or nothing."""
        started = self._clock()
        async with self._gate.batch():
            outcomes = []
            for event in events:
                message = event.message
                source = Source(message.topic, message.partition, message.offset)
                record = InputRecord(message.key, message.value, _headers(message.headers), source)
                outcomes.append(self._step(record))
            self._guard.check(o.kind is OutcomeKind.DEADLETTERED for o in outcomes)
            pending: list[Awaitable[Any]] = []
            for outcome in outcomes:
                source = outcome.record.source
                tid = self._transactional_id(source.topic, source.partition)
                pending += await self._writer.write(outcome, tid)
            await asyncio.gather(*pending)
            acknowledged = self._gate.acknowledged
            for event in events:
                await stream.ack(event)
                message = event.message
                where = (message.topic, message.partition)
                acknowledged[where] = max(acknowledged.get(where, 0), message.offset + 1)
        for observe in self.observers:
            observe(outcomes, started)


def build_app(
    settings: EnforcerSettings, policy: Policy, fingerprinter: Fingerprinter, clock: Clock
) -> tuple[faust.App, BatchProcessor]:
    """The faust app for these settings, and the processor its agent runs."""
    app = EnforcerApp(
        settings.group_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        processing_guarantee=settings.processing_guarantee,
        datadir=str(settings.data_dir),
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.session_timeout / 6,
        stream_wait_empty=True,
        producer_acks=-1,
        broker_credentials=faust_credentials(settings),
        loghandlers=[],
    )
    source = app.topic(
        settings.source_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )
    gate = app.gate = TransactionGate()

    app.until_committed = functools.partial(_wait_until_committed, settings)

    async def send(
        topic: str, key: bytes | None, value: bytes | None, headers: Headers, tid: str | None
    ) -> Awaitable[Any]:
        return await app.producer.send(
            topic, key, value, None, None, list(headers), transactional_id=tid
        )

    writer = KafkaOutcomeWriter(
        OutputTopics(settings.sink_topic, settings.violations_topic, settings.deadletter_topic),
        send,
    )
    processor = BatchProcessor(
        app,
        Step(policy, fingerprinter, clock),
        writer,
        DeadLetterGuard(settings.deadletter_max_ratio, settings.deadletter_window),
        gate,
        time.monotonic,
    )

    async def enforce(stream: faust.StreamT[Any]) -> None:
        # take_events is faust.Stream's; StreamT does not declare it.
        batches = stream.take_events(settings.batch_max, settings.batch_within)  # type: ignore[attr-defined]
        async for events in batches:
            try:
                await processor.process(events, stream)
            except Exception as exc:
                # faust would restart the agent and could skip the offsets (#315, #527):
                # crash the worker instead, with nothing committed past the failure.
                log.critical("enforcer stopping: %s", exc if _is_ours(exc) else type(exc).__name__)
                await app.crash(exc)
                return

    app.agent(source, name="enforcer.enforce")(enforce)
    return app, processor


async def _wait_until_committed(
    settings: EnforcerSettings, wanted: dict[tuple[str, int], int]
) -> None:
    """Poll the group's committed offsets (OffsetFetch, as a new owner reads them)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **aiokafka_security(settings)
    )
    try:
        await admin.start()
        deadline = time.monotonic() + OFFSETS_VISIBLE_TIMEOUT_S
        while True:
            offsets = await admin.list_consumer_group_offsets(
                settings.group_id, partitions=[TopicPartition(t, p) for t, p in wanted]
            )
            committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
            wanted = {tp: o for tp, o in wanted.items() if committed.get(tp, -1) < o}
            if not wanted:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"committed offsets behind acknowledged ones: {wanted}")
            await asyncio.sleep(0.02)
    finally:
        await admin.close()


def _is_ours(exc: BaseException) -> bool:
    # Our messages never carry record contents; others might, so only their type is logged.
    return isinstance(exc, DeadLetterRateExceededError)
