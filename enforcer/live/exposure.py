"""Exposure inside the live loop (docs/exposure.md): what this worker forwarded, per
subject, kept in the compacted exposure topic and in memory.

The worker's consumer reads the exposure topic beside the source, in the same group,
so the range assignor gives it exposure partition ``i`` with source partition ``i``.

- **Restore.** On assignment a partition's exposure is read from the beginning to its
  end while its source partition is paused: the end is where the last committed
  transaction left it, because only the enforcer writes the topic, always in the
  transaction of the records it describes, and the consumer reads committed records
  only. (The group's committed source offsets are read first: they are stable only
  once an earlier owner's last transaction is settled.) Then the partition is paused:
  the worker does not read its own writes back, its state is ahead of them.
- **Forwards.** Every forwarded outcome's identifiers are merged into the state; a
  subject whose value changed is written to exposure partition ``i`` in the same
  transaction as the forwarded record, once per transaction however often it changed
  in it (:meth:`LiveExposure.pending_writes`, right before the commit): the topic is
  compacted, only a subject's last value counts. A record whose subject's value would
  be larger than the exposure topic accepts is not forwarded (the engine dead-letters
  it, ``output-too-large``): what cannot be recorded must not flow.
- **Exact retractions.** A ledger update or erasure retracts the subject's exposed
  identifiers the ledger no longer allows, and only those; a policy in force that the
  exposure was not judged under (a new version at start, or a reload) re-judges every
  subject of the partition before its next event is decided. Both remove what they
  retract from exposure in the same transaction.
- **Aborts.** An aborted transaction's changes are rolled back (the undo log), and a
  re-judgement it held is done again.

No raw value is held here: exposure keeps fingerprints.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy
from enforcer.core.step import HEADER_POLICY, Outcome, Rekeyable
from enforcer.exposure.model import ExposureEntry, exposure_key
from enforcer.exposure.retract import (
    Allowed,
    ExposureRetraction,
    Rekeyed,
    allowed_under,
    not_allowed,
    retraction_value,
    retractions_of,
)
from enforcer.exposure.state import (
    PURPOSE_SETS_KEPT,
    ExposureState,
    ExposureWrite,
    MemoryTable,
    PreviousKey,
    SubjectTable,
    Undo,
)
from enforcer.ledger.retract import RETRACTION_HEADER, claimed_passes_under, passes_under
from enforcer.ledger.store import LedgerStore, RetractionReason
from enforcer.live.limits import RECORD_OVERHEAD
from enforcer.outputs.metrics import ExposureStats
from enforcer.outputs.records import OutputRecord

log = logging.getLogger("enforcer.exposure")

RESTORED_LOG = "exposure restored"
"""The start of the log line written when a partition's exposure is restored."""
REJUDGED_LOG = "exposure re-judged"
REJUDGE_SUBJECTS = 20_000
"""Subjects re-judged per pass of the loop: about a quarter of a second at 10 CPU-µs per
identifier, so that polling, commits and the watchdog go on during a long one."""
"""The start of the log line written when a policy change re-judged a partition."""

Committed = Callable[[list[TopicPartition]], list[TopicPartition]]
"""The group's committed offsets of these partitions (blocks until they are stable)."""
LedgerOf = Callable[[int], "LedgerStore | None"]
RekeyedMacs = Callable[[], Mapping[tuple[str, bytes], bytes]]
"""A ledger update's identifiers: ``(type, the previous key's MAC) -> the MAC under the
key in force`` (:attr:`enforcer.exposure.retract.Rekeyed.macs`)."""
"""The ledger state of a partition (``None``: no ledger)."""


@dataclass
class _Restore:
    started: float
    records: int = 0


class LiveExposure:
    """The worker's exposure partitions: restore, forwards, exact retractions."""

    def __init__(
        self,
        topic: str,
        source_topic: str,
        sink_topic: str,
        key_id: str,
        policy: Policy,
        ledger_mode: LedgerMode,
        ledger_of: LedgerOf,
        monotonic: Callable[[], float],
        new_table: Callable[[int], SubjectTable] = lambda _: MemoryTable(),
        largest: int | None = None,
        previous_key_id: str | None = None,
        purpose_sets_kept: int = PURPOSE_SETS_KEPT,
    ) -> None:
        self.topic = topic
        self._previous_key_id = previous_key_id
        """During a key rotation, the id of the key in force before it: entries made under
        it are re-keyed when their identifier is forwarded again (docs/exposure.md, "Key
        rotation")."""
        self._source_topic = source_topic
        self._sink_topic = sink_topic
        self._key_id = key_id
        self._ledger_mode = ledger_mode
        self._ledger_of = ledger_of
        self._monotonic = monotonic
        self._state = ExposureState(new_table, purpose_sets_kept)
        self._largest = largest
        """The exposure topic's ``max.message.bytes`` (``None``: no limit known)."""
        self._restores: dict[int, _Restore] = {}
        self._restored: list[int] = []
        self._due: set[int] = set()
        self._held: set[int] = set()
        """Exposure partitions assigned to this worker (restored or restoring)."""
        self._cursors: dict[int, list[str]] = {}
        """Per partition being re-judged: the subjects still to judge."""
        self._judged: dict[int, list[int]] = {}
        """Per partition being re-judged: identifiers retracted and subjects changed."""
        """Partitions restored whose exposure must be re-judged before their next event."""
        self._in_transaction: set[int] = set()
        """Partitions re-judged in the open transaction (due again if it is aborted)."""
        self._undo: Undo = {}
        self._dirty: dict[tuple[int, bytes], bytes | None] = {}
        """Subjects whose value changed in the open transaction: (partition, key) -> the
        value to write (its latest)."""
        self._pending_writes = 0
        self._pending_retractions: Counter[str] = Counter()
        self.stats = ExposureStats()
        self.use_policy(policy)

    def use_policy(self, policy: Policy) -> None:
        """``policy`` is in force from now on (at start, or between transactions after a
        reload): every restored partition is re-judged under it before its next event."""
        self._policy = policy
        self._version = policy.version
        self._headers = (RETRACTION_HEADER, (HEADER_POLICY, policy.version.encode()))
        self._writes = policy.mode is Mode.ENFORCE
        self._due |= set(self._held) - set(self._restores)
        self._cursors = {}  # a re-judgement under way starts over under this policy
        self._judged = {}

    # -- rebalances -----------------------------------------------------------------

    def assign(
        self, partitions: list[TopicPartition], committed: Committed
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """The assignment to make (exposure partitions start at the beginning) and the
        source partitions to pause until their exposure is restored."""
        numbers = {tp.partition for tp in partitions if tp.topic == self.topic}
        sources = [tp for tp in partitions if tp.topic == self._source_topic]
        if numbers and sources:
            # Blocks until no transaction of an earlier owner is pending on them: the
            # exposure it wrote in that transaction is then readable.
            committed([TopicPartition(tp.topic, tp.partition) for tp in sources])
        assignment, paused = [], []
        started = self._monotonic()
        self._held = set(numbers)
        for tp in partitions:
            if tp.topic != self.topic:
                assignment.append(tp)
                if tp.topic == self._source_topic and tp.partition not in numbers:
                    # Its exposure partition went to a worker that reads another set of
                    # topics (a rollout under way): its events wait, rather than be
                    # forwarded without exposure knowing.
                    paused.append(TopicPartition(tp.topic, tp.partition))
                    log.warning(
                        "%s[%d] waits: its exposure partition %s[%d] is assigned to another "
                        "worker (do all workers keep the same exposure topic?)",
                        tp.topic,
                        tp.partition,
                        self.topic,
                        tp.partition,
                    )
                continue
            self._restores[tp.partition] = _Restore(started)
            assignment.append(TopicPartition(self.topic, tp.partition, OFFSET_BEGINNING))
            paused.append(TopicPartition(self._source_topic, tp.partition))
        self.stats.restoring = len(self._restores)
        return assignment, paused

    def revoked(self) -> None:
        """Partitions are going (the open transaction was committed or aborted): the
        state goes with them, a partition given back is restored again."""
        for number in self._state.partitions:
            self._state.drop(number)
        self._restores = {}
        self._restored = []
        self._due = set()
        self._held = set()
        self._cursors = {}
        self._judged = {}
        self._in_transaction = set()
        self._undo = {}
        self._dirty = {}
        self.stats.restoring = 0
        self._refresh_sizes()

    def close(self) -> None:
        """Release every partition's table (a disk table removes its files)."""
        self._state.close()

    def restoring(self, partition: int) -> bool:
        """Whether the partition's exposure is still being restored."""
        return partition in self._restores

    # -- restore --------------------------------------------------------------------

    def read(self, message: Message) -> None:
        """Apply one record of the exposure topic while its partition restores (records
        read after the restore are the worker's own writes: already in the state)."""
        number = message.partition()
        assert number is not None
        restore = self._restores.get(number)
        if restore is None:
            return
        restore.records += 1
        failure = self._state.restore(number, message.key(), message.value())
        if failure is not None:
            self.stats.malformed += 1
            log.warning(
                "%s[%d] offset %s: an exposure record was refused (%s); its subject's "
                "exposure is forgotten",
                self.topic,
                number,
                message.offset(),
                failure.message,
            )

    def at_end(self, partition: int) -> None:
        """The consumer reached the partition's end: its restore is done."""
        restore = self._restores.pop(partition, None)
        if restore is None:
            return
        seconds = self._monotonic() - restore.started
        self.stats.restoring = len(self._restores)
        self.stats.restores += 1
        self.stats.restored_records += restore.records
        self._refresh_sizes()
        self._restored.append(partition)
        self._due.add(partition)
        log.info(
            "%s: %s[%d], %d record(s), %d identifier(s) in %.1fs",
            RESTORED_LOG,
            self.topic,
            partition,
            restore.records,
            self._state.entries_in(partition),
            seconds,
        )

    def due(self, partition: int) -> bool:
        """Whether the partition waits to be re-judged (:meth:`rejudge_due`)."""
        return partition in self._due

    def ready(self, partition: int) -> bool:
        """Whether the partition's events may be decided: this worker holds its exposure
        partition, restored and re-judged."""
        return (
            partition in self._held
            and partition not in self._restores
            and (partition not in self._due)
        )

    def take_restored(self) -> list[int]:
        """Partitions whose restore finished since the last call."""
        done, self._restored = self._restored, []
        return done

    # -- forwards -------------------------------------------------------------------

    def forwarded(self, outcome: Outcome, at: str) -> int | None:
        """Merge a forwarded outcome's identifiers (sent at ``at``, RFC 3339); a changed
        subject is written before the commit (:meth:`pending_writes`). Returns ``None``,
        or, when the subject's new value would be larger than the exposure topic
        accepts, its size: nothing is merged then, and the record must not be forwarded
        (exposure could not record it)."""
        subject_id = outcome.subject_id
        identifiers = outcome.forwarded_identifiers
        if subject_id is None or not identifiers:
            return None
        partition = outcome.record.source.partition
        state = self._state
        before = state.slots(partition, subject_id)
        previous = None
        rotated = self._previous_key_id
        if (
            rotated is not None
            and isinstance(identifiers, Rekeyable)
            and state.holds_key(before, rotated)
        ):
            previous = PreviousKey(rotated, identifiers.previous_macs)
        if (
            previous is None
            and before
            and state.unchanged(
                before, self._sink_topic, self._key_id, self._version, identifiers, at
            )
        ):
            return None  # forwarded again, nothing new: the steady state's path
        if not state.forwarded_macs(
            partition,
            subject_id,
            self._sink_topic,
            self._key_id,
            self._version,
            identifiers,
            at,
            self._undo,
            previous,
        ):
            return None
        key = exposure_key(subject_id)
        value = state.value(partition, subject_id)
        size = len(key) + len(value or b"") + RECORD_OVERHEAD
        if self._largest is not None and size > self._largest:
            # Not recorded. Enforce mode dead-letters the record; audit mode forwards
            # it (it changes nothing that flows), counted here.
            state.put_back(partition, subject_id, before)
            self.stats.unrecorded += 1
            return size
        self._dirty[(partition, key)] = value
        return None

    @property
    def largest(self) -> int | None:
        """The exposure topic's ``max.message.bytes``, when known."""
        return self._largest

    def pending_writes(self) -> list[OutputRecord]:
        """The exposure records the open transaction owes: each subject changed in it,
        with its value as it stands now (a tombstone when nothing stays exposed). Taken
        right before the commit."""
        dirty, self._dirty = self._dirty, {}
        self._pending_writes += len(dirty)
        return [
            OutputRecord(self.topic, key, value, (), partition)
            for (partition, key), value in dirty.items()
        ]

    # -- retractions ----------------------------------------------------------------

    def ledger_changed(
        self,
        partition: int,
        subject_id: str,
        reason: RetractionReason,
        updated_at: str,
        rekeyed: RekeyedMacs | None = None,
    ) -> list[OutputRecord]:
        """A ledger update or erasure of ``subject_id`` was applied: retract its exposed
        identifiers the ledger no longer allows (nothing is written in audit mode,
        where the retractions are only counted). During a key rotation, ``rekeyed`` (the
        update's identifiers under both keys, computed when asked) lets an entry made
        under the previous key be judged by the ledger too."""
        if partition not in self._held:
            return []  # not this worker's: the engine holds such records back
        # An erased subject has nothing allowed, whatever key its entries were made under;
        # nor has one whose latest ledger value was refused (withheld).
        ledger = self._ledger_of(partition)
        allowed = (
            _never
            if reason is RetractionReason.SUBJECT_ERASED
            or (ledger is not None and ledger.grants_nothing(subject_id))
            else self._allowed(partition, rekeyed)
        )
        if not self._writes:
            gone = not_allowed(self._state.exposure(partition, subject_id), allowed)
            self._pending_retractions[reason.value] += len(gone)
            return []
        removed, write = self._state.retract(partition, subject_id, allowed, self._undo)
        if write is None:
            return []
        retractions = retractions_of(subject_id, removed, reason, ledger_updated_at=updated_at)
        self._changed(write)
        return self._retractions(retractions)

    def rejudge_due(
        self, ready: Callable[[int], bool], budget: int = REJUDGE_SUBJECTS
    ) -> tuple[list[OutputRecord], list[int]]:
        """Re-judge the partitions due (restored, or under a new policy) whose source
        may be decided (``ready``: their ledger is restored too), at most ``budget``
        subjects a call, so that the loop goes on polling and committing: what the
        policy in force no longer allows is retracted, reason ``policy-changed``.
        Returns the retractions and the partitions whose re-judgement is complete (their
        events may be decided; a partition stays due until then)."""
        outputs: list[OutputRecord] = []
        finished: list[int] = []
        for number in sorted(n for n in self._due if ready(n)):
            if budget <= 0:
                break
            if number in self._restores:
                continue
            left = self._cursors.get(number)
            if left is None:
                left = self._cursors[number] = self._state.subject_ids(number)
                self._judged[number] = [0, 0]
            if self._writes:
                # Undone by an abort: done again then. Audit mode changes nothing.
                self._in_transaction.add(number)
            chunk = left[-budget:]
            del left[-budget:]
            budget -= len(chunk)
            outputs += self._rejudge(number, chunk)
            if not left:
                del self._cursors[number]
                self._due.discard(number)
                finished.append(number)
                self._done_rejudging(number)
        return outputs, finished

    def _rejudge(self, number: int, subjects: list[str]) -> list[OutputRecord]:
        allowed = self._allowed(number)
        reason = RetractionReason.POLICY_CHANGED
        counts = self._judged[number]
        if not self._writes:
            # Audit mode: what would be retracted is counted and logged, nothing written;
            # counted at once: no abort undoes it, and it is not judged again after one.
            # Only entries last forwarded under another policy: what audit mode let
            # through under this one was counted as a finding when it flowed, and
            # exposure keeps it, so every restore would count it again.
            version = self._version
            for subject in subjects:
                gone = sum(
                    1
                    for entry in not_allowed(self._state.exposure(number, subject), allowed)
                    if entry.policy_version != version
                )
                if gone:
                    self.stats.retractions[reason.value] += gone
                    counts[0] += gone
                    counts[1] += 1
            return []
        judged = self._state.rejudge(number, allowed, self._version, self._undo, subjects)
        for write in judged.writes:
            self._changed(write)
        counts[0] += len(judged.retractions)
        counts[1] += len(judged.writes)
        return self._retractions(judged.retractions)

    def _done_rejudging(self, number: int) -> None:
        retracted, subjects = self._judged.pop(number, [0, 0])
        if retracted:
            log.info(
                "%s: %s[%d] under policy %s: %d identifier(s) of %d subject(s) %s",
                REJUDGED_LOG,
                self.topic,
                number,
                self._version,
                retracted,
                subjects,
                "retracted" if self._writes else "would be retracted (audit mode)",
            )

    def _allowed(self, partition: int, rekeyed: RekeyedMacs | None = None) -> Allowed:
        previous = self._previous_key_id
        return allowed_under(
            passes_under(self._policy),
            self._ledger_mode,
            self._ledger_of(partition),
            self._key_id,
            None if previous is None or rekeyed is None else Rekeyed(previous, rekeyed),
            claimed_passes_under(self._policy),
        )

    def _retractions(self, retractions: list[ExposureRetraction]) -> list[OutputRecord]:
        pending = self._pending_retractions
        records = []
        for retraction in retractions:
            pending[retraction.reason.value] += 1
            records.append(
                OutputRecord(
                    retraction.sink_topic,
                    exposure_key(retraction.subject_id),
                    retraction_value(retraction),
                    self._headers,
                )
            )
        return records

    def _changed(self, write: ExposureWrite) -> None:
        self._dirty[(write.partition, write.key)] = write.value

    # -- transactions ---------------------------------------------------------------

    def committed(self) -> None:
        """The open transaction committed."""
        self._undo = {}
        self._in_transaction = set()
        self._dirty = {}
        self.stats.writes += self._pending_writes
        self.stats.retractions.update(self._pending_retractions)
        self._pending_writes = 0
        self._pending_retractions.clear()
        self._forget_unused_purposes()
        self._refresh_sizes()

    def _forget_unused_purposes(self) -> None:
        """Between transactions (nothing holds a slot's old numbers), the purpose sets
        no exposed identifier uses any more are forgotten, once there are many."""
        started = self._monotonic()
        held = self._state.purpose_sets
        kept = self._state.forget_unused_purposes()
        if kept is not None:
            log.info(
                "exposure: %d purpose set(s) held, %d still in use, kept (%.1fs)",
                held,
                kept,
                self._monotonic() - started,
            )

    def settle_unwritten(self) -> None:
        """No transaction is open, so nothing written is pending: in audit mode any
        would-be retraction still pending (nothing written, nothing to undo) counts now
        rather than at some later commit. A re-judgement's count at once already."""
        if self._writes or self._undo:
            return
        self.stats.retractions.update(self._pending_retractions)
        self._pending_retractions.clear()
        self._in_transaction = set()

    def rolled_back(self) -> None:
        """The open transaction was aborted: its changes are undone, and its records
        (and re-judgements) will be done again."""
        self._state.rollback(self._undo)
        self._dirty = {}
        # A re-judgement the transaction held starts over (what an earlier transaction
        # committed of it retracts nothing the second time).
        for number in self._in_transaction:
            self._cursors.pop(number, None)
            self._judged.pop(number, None)
        self._due |= {n for n in self._in_transaction if n in self._state.partitions}
        self._in_transaction = set()
        self._pending_writes = 0
        self._pending_retractions.clear()
        self._refresh_sizes()

    def _refresh_sizes(self) -> None:
        self.stats.identifiers = len(self._state)
        self.stats.subjects = self._state.subjects


def _never(_subject_id: str, _entry: ExposureEntry) -> bool:
    return False
