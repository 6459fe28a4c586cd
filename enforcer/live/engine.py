"""The loop: consume a batch → decide each record → send its outputs → (every commit
interval) put the offsets in the transaction and commit → next batch.

One thread does all of it, so a batch and a commit never overlap, and the commit is
one obvious point: :meth:`Engine._commit`. The client sends outputs in the background
while the next batch is decided, which is all the pipelining needed.

Failures never lose or repeat a record:
- a commit Kafka refuses (a stale generation after this worker was frozen, a failed
  delivery) aborts the transaction and rewinds every partition to where the
  transaction began, so its records are decided again;
- the dead-letter guard, or any other error, aborts and stops the worker: nothing is
  committed after a failed batch.
- a schema registry that does not answer holds the batch that needs it: its source
  records are not decided, their partitions are paused and read again from the first
  held record once the registry answers (:mod:`enforcer.live.schemas`).

Rebalances (eager, range assignment: partition ``i`` of every subscribed topic goes to
the same worker, so co-partitioned topics stay together) are handled in the client's
callbacks, which run inside :meth:`Consumer.consume` on this same thread: on revoke
the open transaction is committed first (or aborted if it cannot be); on loss it is
aborted; on assign the worker starts clean. The producer is never replaced, and
KIP-447 fencing makes it safe to keep: a commit carries the group generation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from enforcer.core.clock import Clock, rfc3339
from enforcer.core.models import DeadLetterReason, Mode
from enforcer.core.step import (
    Headers,
    InputRecord,
    Outcome,
    Source,
    Step,
    dead_letter,
    traceparent,
)
from enforcer.live.clients import DENIED, denied_cause, kafka_error
from enforcer.live.exposure import LiveExposure
from enforcer.live.failures import WorkerStopError
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health
from enforcer.live.ledger import LiveLedger
from enforcer.live.limits import OutputLimits
from enforcer.live.output import CommitAborted, Output
from enforcer.live.policy_reload import PolicyReload, on_policy_change
from enforcer.live.positions import TransactionPositions
from enforcer.live.schemas import RegistryWait
from enforcer.outputs.metrics import BatchCounts, BatchObserver
from enforcer.outputs.records import OutputRecord

log = logging.getLogger("enforcer.engine")
_new = tuple.__new__

ASSIGNED_LOG = "assigned partitions"
"""The start of the log line written at every assignment (tests wait for it)."""
COMMITTED_LOG = "first commit"


@dataclass
class EngineConfig:
    """How the loop runs."""

    source_topic: str
    limits: OutputLimits
    batch_max: int
    batch_within_s: float
    commit_interval_s: float


class Engine:
    """Runs until :attr:`should_stop` says so, or a failure stops it."""

    def __init__(
        self,
        config: EngineConfig,
        consumer: Consumer,
        output: Output,
        step: Step,
        guard: DeadLetterGuard,
        health: Health,
        monotonic: Callable[[], float],
        should_stop: Callable[[], bool],
        ledger: LiveLedger | None = None,
        schemas: RegistryWait | None = None,
        exposure: LiveExposure | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._exposure = exposure
        # The time exposure records a batch's forwards at: one clock read per batch.
        self._clock = clock
        self._schemas = schemas
        # Source records read while the schema registry was down: each partition's first
        # such offset, read again (its partition resumed) once the registry answers.
        self._held: dict[int, int] = {}
        # Source records read while their partition's ledger was restoring (a fetch
        # already under way when it was paused): read again once it is restored.
        self._deferred: dict[int, int] = {}
        # Ledger records read live while their partition's exposure was not ready
        # (restoring, or waiting to be re-judged): each partition's first offset, read
        # again once it is.
        self._ledger_deferred: dict[int, int] = {}
        self._consumer = consumer
        self._output = output
        self._step = step
        self._guard = guard
        self._health = health
        self._monotonic = monotonic
        self._should_stop = should_stop
        self._positions = TransactionPositions()
        # The counts of the batches decided and sent since the last commit: the
        # observers see them once their transaction commits. Counts, not outcomes: an
        # outcome is let go as soon as its records are handed to the producer.
        self._pending: list[BatchCounts] = []
        self._opened_at = 0.0
        self.observers: list[BatchObserver] = []
        self.on_tick: list[Callable[[], None]] = []
        self.commit_gate: Callable[[], bool] | None = None
        """Asked right before every commit: False puts the commit off (the transaction
        stays open; on a revoke it is aborted), an exception stops the worker: the
        worker's :meth:`enforcer.live.watch.TopicWatch.confirm`."""
        self.policy_reload: PolicyReload | None = None
        """The watch over the policy file, when there is one: a valid change is switched
        to at the next transaction boundary (:meth:`_switch_policy`)."""

    def run(self) -> None:
        """Subscribe and loop; on a stop request commit what is done and leave the group.

        Raises :class:`WorkerStopError` (after aborting) when the worker must stop.
        """
        self._output.start(self._should_stop)
        if self._should_stop():
            return
        topics = [self._config.source_topic]
        if self._ledger is not None:
            topics.append(self._ledger.topic)
        if self._exposure is not None:
            topics.append(self._exposure.topic)
        self._consumer.subscribe(
            topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._health.on_started()
        try:
            while not self._should_stop():
                self._once()
            self._commit()
            if self._output.open:  # the commit was put off: nothing of it may commit now
                self._abort("the worker is stopping before its commit could be confirmed")
        except BaseException:
            self._abort("the worker is stopping on an error")
            raise

    def _once(self) -> None:
        config = self._config
        health = self._health
        reload = self.policy_reload
        if reload is not None and reload.pending is not None and not self._output.open:
            self._switch_policy(reload)
        if self._held:
            health.doing = "asking the schema registry again"
            self._release_held()
        if self._exposure is not None:
            health.doing = "re-judging exposure"
            if not self._rejudge(self._exposure):
                return  # rewound: the next pass starts over
        health.doing = "consume (or a rebalance callback)"
        messages = self._consumer.consume(config.batch_max, config.batch_within_s)
        health.on_loop()
        if messages:
            health.doing = "deciding and sending a batch"
            self._process(messages)
        if self._output.open and self._monotonic() - self._opened_at >= config.commit_interval_s:
            health.doing = "commit"
            self._commit()
        health.doing = "metrics"
        self._output.poll()
        for tick in self.on_tick:
            tick()

    def _switch_policy(self, reload: PolicyReload) -> None:
        """A transaction boundary (none is open: the last one committed, or aborted and
        its records are to be read again) with a new policy waiting: every record from
        here on is decided under it, and no transaction holds records of both."""
        self._health.doing = "switching to a reloaded policy"
        pending = reload.pending
        assert pending is not None
        on_policy_change(self._step.policy, pending.policy)
        self._step = reload.switch(self._step)
        if self._exposure is not None:
            # Re-judged under the new policy before the next event is decided (_once).
            self._exposure.use_policy(self._step.policy)

    def _process(self, messages: Sequence[Message]) -> None:
        started = self._monotonic()
        outputs = self._admit(messages, started)
        try:
            if self._ledger is not None:
                self._hold_ledger_ends(self._ledger, started)
            if self._pending and not self._output.open:
                # A batch joined with nothing to send (ledger records that retract
                # nothing): its offsets still need a transaction to commit in.
                self._output.begin()
            send = self._output.send
            for output in outputs:
                send(output)
        except CommitAborted as aborted:
            self._rewind(aborted.reason)

    def _admit(self, messages: Sequence[Message], started: float) -> list[OutputRecord]:
        """Decide the batch and make it part of the open transaction: its outputs.

        Its outcomes end here: what the observers will need of them at the commit is
        counted in a :class:`BatchCounts`, and their records are in the outputs."""
        batch = BatchCounts(started)
        outcomes, outputs, ledger_read = self._read_batch(messages, batch)
        self._resume_restored()
        if outcomes or ledger_read:
            # Raises when too many recent records were dead-lettered: nothing of this
            # batch is sent, and the open transaction is aborted on the way out.
            self._guard.check(
                (o.would_dead_letter for o in outcomes),
                lambda i: traceparent(outcomes[i].record.headers),
            )
            if not self._output.open:
                self._opened_at = started
            self._health.on_work()
            # The batch is part of the transaction before anything is sent: if sending
            # fails, the rewind goes back to its first record too.
            advance = self._positions.advance
            for outcome in outcomes:
                source = outcome.record.source
                advance(source.topic, source.partition, source.offset)
            for message in ledger_read:
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                assert topic is not None and partition is not None and offset is not None
                advance(topic, partition, offset)
            self._pending.append(batch)
        return outputs

    def _read_batch(
        self, messages: Sequence[Message], batch: BatchCounts
    ) -> tuple[list[Outcome], list[OutputRecord], list[Message]]:
        """Decide the batch's events (counted in ``batch``) and apply its ledger
        records: the events' outcomes, every output, and the ledger records that join
        the transaction."""
        outcomes: list[Outcome] = []
        outputs: list[OutputRecord] = []
        ledger_read: list[Message] = []
        ledger = self._ledger
        exposure = self._exposure
        exposure_topic = None if exposure is None else exposure.topic
        at = "" if exposure is None or self._clock is None else rfc3339(self._clock.now())
        fit = self._config.limits.fit
        count = batch.add
        hold = self._schemas is not None and not self._schemas_ready(self._schemas, messages)
        held: list[Message] = []
        for message in messages:
            error = message.error()
            if error is not None:
                self._consumer_error(error, message)
                continue
            topic = message.topic()
            if ledger is not None and topic == ledger.topic:
                if exposure is not None and self._defer_ledger(ledger, exposure, message):
                    continue
                if self._read_ledger(ledger, message, outputs):
                    ledger_read.append(message)
                continue
            if exposure is not None and topic == exposure_topic:
                exposure.read(message)
                continue
            if hold:
                held.append(message)
                continue
            if self._defer(message):
                continue
            outcome, records = fit(self._decide(message))
            if exposure is not None and outcome.forwarded_identifiers:
                # The outcome actually sent (after the size check); the subject's value
                # is written before the commit (_commit).
                too_large = exposure.forwarded(outcome, at)
                if too_large is not None and self._step.policy.mode is Mode.ENFORCE:
                    outcome, records = fit(_unrecordable(outcome, too_large, exposure))
            count(outcome)
            outcomes.append(outcome)
            outputs += records
        if held:
            self._hold(held)
        return outcomes, outputs, ledger_read

    def _schemas_ready(self, schemas: RegistryWait, messages: Sequence[Message]) -> bool:
        """Whether the batch's source records may be decided: every schema their values
        name is loaded (fetched now if need be), and no earlier record waits for the
        registry. Raises :class:`WorkerStopError` past the registry's deadline."""
        if self._held:
            return False  # a later record must not overtake a held one
        source = self._config.source_topic
        self._health.doing = "fetching schemas from the schema registry"
        ready = schemas.ready(
            m.value() for m in messages if m.error() is None and m.topic() == source
        )
        self._health.schema_registry_down = schemas.cause
        return ready

    def _hold(self, messages: Sequence[Message]) -> None:
        """Keep the first offset of each partition's held records, and pause the
        partitions: the consumer goes on polling (the group keeps this worker), and
        reads nothing more of them until the registry answers."""
        held = self._held
        for message in messages:
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None
            held[partition] = min(offset, held.get(partition, offset))
        source = self._config.source_topic
        self._consumer.pause([TopicPartition(source, partition) for partition in held])

    def _release_held(self) -> None:
        """Once the registry answers: read the held records again from their first
        offset (a partition whose ledger is still restoring waits for it, as a
        deferred record does). Raises :class:`WorkerStopError` past the deadline."""
        schemas = self._schemas
        assert schemas is not None
        released = schemas.retry()
        self._health.schema_registry_down = schemas.cause
        if not released:
            return
        held, self._held = self._held, {}
        source = self._config.source_topic
        ready = []
        for partition, offset in held.items():
            if not self._ready(partition):
                self._deferred[partition] = min(offset, self._deferred.get(partition, offset))
                continue
            self._consumer.seek(TopicPartition(source, partition, offset))
            ready.append(TopicPartition(source, partition))
        if ready:
            self._consumer.resume(ready)

    def _lower_held(self, partition: int, offset: int) -> None:
        """A held partition was sought back to ``offset``: the release must read from
        there, not from the first record held before."""
        held = self._held.get(partition)
        if held is not None and offset < held:
            self._held[partition] = offset

    def _forget_held(self) -> None:
        """At a rebalance the held records go with their partitions (the next owner
        reads them from the committed offset): resume those partitions, which librdkafka
        would otherwise keep paused when they are assigned again."""
        if self._held:
            source = self._config.source_topic
            self._consumer.resume([TopicPartition(source, p) for p in self._held])
            self._held = {}

    def _read_ledger(
        self, ledger: LiveLedger, message: Message, outputs: list[OutputRecord]
    ) -> bool:
        """Apply a ledger record; True when it is part of the transaction (read beyond
        the restore), its retractions or dead letter added to ``outputs``."""
        read = ledger.read(message)
        if read is None:
            return False
        outputs += read.outputs
        if read.dead_letter is not None:
            outputs += self._config.limits.fit(read.dead_letter)[1]
        return True

    def _ready(self, partition: int) -> bool:
        """Whether the partition's events may be decided: its ledger and its exposure,
        each when configured, are held by this worker, restored, and (exposure)
        re-judged under the policy in force."""
        ledger, exposure = self._ledger, self._exposure
        if ledger is not None and (ledger.store(partition) is None or ledger.restoring(partition)):
            return False
        return exposure is None or exposure.ready(partition)

    def _defer(self, message: Message) -> bool:
        """True for a source record whose partition is not ready (:meth:`_ready`): its
        first such offset is read again once it is."""
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        # A partition with a deferred record stays deferred until it is read again from
        # there (_resume): its restore can finish in the middle of a batch, and a later
        # record decided at once would overtake the deferred one (decided twice after
        # the seek back, and an abort would rewind past the deferred one).
        if self._ready(partition) and partition not in self._deferred:
            return False
        self._deferred[partition] = min(offset, self._deferred.get(partition, offset))
        return True

    def _defer_ledger(self, ledger: LiveLedger, exposure: LiveExposure, message: Message) -> bool:
        """True for a ledger record that would be applied live while its partition's
        exposure is not ready: its retractions must be judged against the whole,
        re-judged exposure. Read again once it is (nothing of it joined the
        transaction)."""
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        if exposure.ready(partition) or not ledger.live(partition, offset):
            return False
        deferred = self._ledger_deferred
        deferred[partition] = min(offset, deferred.get(partition, offset))
        return True

    def _resume_restored(self) -> None:
        """Let the events of partitions whose ledger and exposure are now restored be
        decided; with exposure, once re-judged too (:meth:`_rejudge` resumes those). A
        restored exposure partition is paused: the worker's own writes need not be read
        back."""
        restored: list[int] = []
        if self._ledger is not None:
            restored += self._ledger.take_restored()
        exposure = self._exposure
        if exposure is not None:
            done = exposure.take_restored()
            if done:
                self._consumer.pause([TopicPartition(exposure.topic, p) for p in done])
            restored += done
        self._resume(sorted(set(restored)))

    def _resume(self, partitions: Sequence[int]) -> None:
        """Read the ready ones of ``partitions`` again from their first deferred record
        (source and ledger), and resume their source."""
        source, ledger = self._config.source_topic, self._ledger
        for partition in partitions:
            if not self._ready(partition):
                continue  # resumed when the rest is done
            deferred = self._deferred.pop(partition, None)
            if deferred is not None:
                self._consumer.seek(TopicPartition(source, partition, deferred))
                self._lower_held(partition, deferred)
            held_back = self._ledger_deferred.pop(partition, None)
            if held_back is not None and ledger is not None:
                self._consumer.seek(TopicPartition(ledger.topic, partition, held_back))
            self._consumer.resume([TopicPartition(source, partition)])

    def _rejudge(self, exposure: LiveExposure) -> bool:
        """Send what re-judging exposure retracts (a part of it each pass), in the open
        transaction (opened if need be), before the partitions' next events are decided;
        resume the partitions whose re-judgement is complete. False when sending failed
        and the transaction was rewound."""
        ledger = self._ledger
        outputs, finished = exposure.rejudge_due(
            lambda p: ledger is None or not ledger.restoring(p)
        )
        if outputs:
            try:
                if not self._output.open:
                    self._opened_at = self._monotonic()
                send = self._output.send
                for output in outputs:
                    send(output)
            except CommitAborted as aborted:
                self._rewind(aborted.reason)
                return False
        elif not self._output.open:
            exposure.settle_unwritten()
        self._resume(finished)
        return True

    def _hold_ledger_ends(self, ledger: LiveLedger, started: float) -> None:
        """The group had no ledger offset where a restore read to the end: commit that
        end (in the open transaction, or a new one), so that a worker after a crash
        retracts from there instead of skipping ahead. Held until a commit has it.

        Raises :class:`CommitAborted` when no transaction can be begun."""
        holds = ledger.holds()
        if not holds:
            return
        if not self._output.open:
            self._opened_at = started
            self._output.begin()
        for partition, offset in holds.items():
            self._positions.hold(ledger.topic, partition, offset)

    def _decide(self, message: Message) -> Outcome:
        # The record's key, value and header pairs are the client's own objects, not
        # copies: what Step needs is already there.
        # A consumed record always has its coordinates. The tuples are built with
        # tuple.__new__: every field is given, and the NamedTuples' own __new__ is
        # Python code (a quarter of this function's cost).
        source = _new(Source, (message.topic(), message.partition(), message.offset()))
        try:
            headers = message_headers(message)
        except UnreadableHeadersError:
            # The client cannot read them (a key that is not UTF-8): the record is
            # dead-lettered without its headers; the original stays in the source topic.
            record = InputRecord(message.key(), message.value(), (), source)
            return dead_letter(
                record,
                DeadLetterReason.UNREADABLE,
                "the record's headers cannot be read (a header key is not valid UTF-8); "
                "the dead letter carries none of them",
            )
        return self._step(_new(InputRecord, (message.key(), message.value(), headers, source)))

    def _consumer_error(self, error: KafkaError, message: Message) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            ledger, exposure = self._ledger, self._exposure
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None
            if ledger is not None and message.topic() == ledger.topic:
                ledger.at_end(partition, offset)
            elif exposure is not None and message.topic() == exposure.topic:
                exposure.at_end(partition)
            return
        if error.code() in DENIED:
            raise WorkerStopError(denied_cause(error))
        if error.fatal():
            raise WorkerStopError(f"consumer failed: {error.name()} ({error.str()})")
        log.warning("consumer: %s (%s)", error.name(), error.str())

    def _commit(self) -> None:
        """The commit point: offsets of every decided record, with their outputs."""
        if not self._output.open:
            return
        if self.commit_gate is not None and not self.commit_gate():
            return
        if self._exposure is not None and not self._send_exposure(self._exposure):
            return
        offsets = self._positions.to_commit()
        try:
            self._output.commit(offsets, self._consumer)
        except CommitAborted as aborted:
            self._rewind(aborted.reason)
            return
        if self._ledger is not None:
            self._ledger.committed(offsets)
        if self._exposure is not None:
            self._exposure.committed()
        first = self._health.commits == 0
        self._health.on_commit()
        if first:
            log.info("%s: the worker is making progress", COMMITTED_LOG)
        committed = self._pending
        self._forget()
        for batch in committed:
            for observe in self.observers:
                observe(batch)

    def _abort(self, why: str) -> None:
        if self._output.open:
            try:
                self._output.abort()
            except WorkerStopError as exc:
                log.error("could not abort the open transaction (%s); it times out", exc)
            self._health.on_abort(why)
            log.info("open transaction aborted: %s", why)
        self._rolled_back()
        self._forget()

    def _rolled_back(self) -> None:
        if self._ledger is not None:
            self._ledger.rolled_back()
        if self._exposure is not None:
            self._exposure.rolled_back()

    def _rewind(self, reason: str) -> None:
        """After an abort: read again from where the transaction began."""
        rewind = self._positions.to_rewind()
        self._rolled_back()
        self._forget()
        self._health.on_abort(reason)
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        ledger = self._ledger
        for (topic, partition), offset in rewind.items():
            if (topic, partition) in assigned:
                self._consumer.seek(TopicPartition(topic, partition, offset))
                # Records deferred at or after it are read again from there anyway.
                if topic == self._config.source_topic:
                    self._lower_held(partition, offset)
                    _forget_from(self._deferred, partition, offset)
                elif ledger is not None and topic == ledger.topic:
                    _forget_from(self._ledger_deferred, partition, offset)
        log.warning(
            "transaction aborted (%s); %d partition(s) are read again from the last commit",
            reason,
            len(rewind),
        )

    def _send_exposure(self, exposure: LiveExposure) -> bool:
        """Send the exposure records the open transaction owes; False when sending
        failed and the transaction was rewound."""
        try:
            send = self._output.send
            for record in exposure.pending_writes():
                send(record)
        except CommitAborted as aborted:
            self._rewind(aborted.reason)
            return False
        return True

    def _forget(self) -> None:
        self._positions.clear()
        self._pending = []

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget()
        self._deferred = {}
        self._ledger_deferred = {}
        self._held = {}
        ledger, exposure = self._ledger, self._exposure
        if ledger is not None or exposure is not None:
            assignment, paused = partitions, list[TopicPartition]()
            if ledger is not None:
                assignment, paused = ledger.assign(assignment, self._committed)
            if exposure is not None:
                assignment, waiting = exposure.assign(assignment, self._committed)
                paused += waiting
            consumer.assign(assignment)
            stopped = {(tp.topic, tp.partition) for tp in paused}
            # librdkafka keeps a partition's pause across a revoke: resume the others
            # (exposure partitions too: a restore reads them).
            ready = [
                TopicPartition(tp.topic, tp.partition)
                for tp in assignment
                if (ledger is None or tp.topic != ledger.topic)
                and (tp.topic, tp.partition) not in stopped
            ]
            if ready:
                consumer.resume(ready)
            if paused:
                consumer.pause(paused)
            own = {t.topic for t in (ledger, exposure) if t is not None}
            partitions = [tp for tp in partitions if tp.topic not in own]
        self._health.on_assigned((tp.topic, tp.partition) for tp in partitions)
        listed = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none"
        # The count as a field of its own (``enforcer.partitions`` in JSON logs), so that a
        # log pipeline need not parse the list (docs/operations.md, logs).
        log.info("%s: %s", ASSIGNED_LOG, listed, extra={"partitions": len(partitions)})

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit before the partitions go: their new owner starts from these offsets.
        # librdkafka reads committed offsets as stable ones (KIP-447), so the new owner
        # waits for this transaction's markers rather than reading stale offsets.
        self._commit()
        self._abort("revoked")
        self._forget_held()
        self._revoked()
        self._health.on_revoked()
        log.info("revoked partitions: %d", len(partitions))

    def _on_lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: another worker may own them already. Nothing may commit.
        self._abort("lost")
        self._forget_held()
        self._revoked()
        self._health.on_revoked()
        log.warning(
            "lost %d partition(s) (session timed out); the open transaction was aborted",
            len(partitions),
        )

    def _revoked(self) -> None:
        if self._ledger is not None:
            self._ledger.revoked()
        if self._exposure is not None:
            self._exposure.revoked()

    def _committed(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed (stable) offsets of ``partitions``."""
        try:
            found: list[TopicPartition] = self._consumer.committed(
                partitions, timeout=COMMITTED_TIMEOUT_S
            )
        except KafkaException as exc:
            raise WorkerStopError(
                f"cannot read the group's committed ledger offsets: {kafka_error(exc).name()}"
            ) from None
        return found


COMMITTED_TIMEOUT_S = 20.0


def _forget_from(deferred: dict[int, int], partition: int, offset: int) -> None:
    """Forget the partition's deferred record when a rewind to ``offset`` reads it again."""
    at = deferred.get(partition)
    if at is not None and at >= offset:
        del deferred[partition]


def _unrecordable(outcome: Outcome, size: int, exposure: LiveExposure) -> Outcome:
    """The dead letter of a record exposure cannot record: forwarding it would leave
    identifiers in the sink that no retraction could ever name."""
    return dead_letter(
        outcome.record,
        DeadLetterReason.OUTPUT_TOO_LARGE,
        f"the subject's exposure record would be {size} bytes with framing; the exposure "
        f"topic {exposure.topic} accepts {exposure.largest} (max.message.bytes)",
    )


class UnreadableHeadersError(ValueError):
    """The client could not decode the record's headers."""


def message_headers(message: Message) -> Headers:
    """The record's headers as read; a null value stays null.

    The client hands them over as ``(str, bytes | None)`` pairs: the pairs are kept as
    they are, not copied (a record without headers costs nothing here)."""
    try:
        raw = message.headers()
    except (SystemError, UnicodeDecodeError) as exc:
        # confluent-kafka decodes header keys as UTF-8 and fails on anything else.
        raise UnreadableHeadersError(type(exc).__name__) from None
    if not raw:
        return ()
    # A consumer's headers are always a list of (str, bytes | None); the client's type
    # also allows a dict and str values, which only a producer is given.
    return tuple(cast("list[tuple[str, bytes | None]]", raw))
