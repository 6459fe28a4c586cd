"""The purpose ledger inside the live loop (docs/ledger.md).

The worker's consumer reads the ledger topic beside the source, in the same group,
so the range assignor gives it ledger partition ``i`` with source partition ``i``.
For each ledger partition it holds a materialized state:

- **Restore.** On assignment a partition's state is rebuilt from the ledger's
  beginning while its source partition is paused: silently (no retraction, no dead
  letter) up to the group's committed ledger offset, which is where the last
  committed transaction left it. Without a committed offset (the group's first
  start), it restores silently to the partition's end and commits that position.
  Then the source partition resumes: no event is decided before its ledger is there.
- **Reuse.** A partition revoked and given back to the same worker keeps its state
  when the committed offset is still the one the state stands at (nobody else moved
  it); otherwise it is restored again.
- **Updates.** Beyond the committed offset, every ledger record is applied inside
  the open transaction: an update or tombstone that turns an identifier from passing
  to not passing writes a retraction to the sink; an invalid record is dead-lettered,
  and when its key names a subject, that subject keeps no purpose (retracted as a
  withdrawal would be) until its next valid value: fail closed, as a restore does.
  The ledger offsets go into the same transaction as the retractions (exactly once).
- **Aborts.** An aborted transaction's ledger records are read again, so the state
  is rolled back to where the transaction began (the undo log).

This module holds no raw value: identifiers are fingerprinted as they are read.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from enforcer.core.clock import kafka_time, rfc3339
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import SubjectGrants
from enforcer.core.parse import ParseFailure
from enforcer.core.step import HEADER_POLICY, InputRecord, Outcome, Source, dead_letter
from enforcer.ledger.model import (
    SubjectErasure,
    SubjectUpdate,
    SubjectWithheld,
    parse_ledger_record,
)
from enforcer.ledger.retract import RETRACTION_HEADER, retraction_value
from enforcer.ledger.state import (
    LedgerState,
    LedgerStore,
    Passes,
    Retraction,
    RetractionReason,
    Undo,
)
from enforcer.ledger.store import apply_record
from enforcer.outputs.metrics import LedgerStats
from enforcer.outputs.records import OutputRecord

log = logging.getLogger("enforcer.ledger")

RESTORED_LOG = "ledger restored"
"""The start of the log line written when a partition's ledger is restored."""

KEPT_LOG = "ledger kept"
"""The start of the log line written when a partition comes back with its state intact."""

RekeyedMacs = Callable[[], Mapping[tuple[str, bytes], bytes]]
"""During a key rotation: a ledger update's identifiers, ``(type, the previous key's MAC)
-> the MAC under the key in force``, computed when asked."""


class ExactRetractions(Protocol):
    """``(partition, subject_id, reason, ledger time[, rekeyed])`` -> the retractions
    (and exposure record) a ledger update owes (:meth:`enforcer.live.exposure.
    LiveExposure.ledger_changed`)."""

    def __call__(
        self,
        partition: int,
        subject_id: str,
        reason: RetractionReason,
        updated_at: str,
        rekeyed: RekeyedMacs | None = None,
    ) -> list[OutputRecord]: ...


Committed = Callable[[list[TopicPartition]], list[TopicPartition]]
"""The group's committed offsets of these partitions (negative: none)."""


@dataclass
class _Restore:
    target: int | None
    """The committed ledger offset to restore up to; ``None``: to the partition's end."""
    started: float
    records: int = 0


class LedgerRead(NamedTuple):
    """What one ledger record read beyond the restore produces."""

    outputs: list[OutputRecord]
    """Retractions for the sink."""
    dead_letter: Outcome | None
    """The dead-letter outcome of an invalid record."""


class LiveLedger:
    """The worker's ledger partitions: restore, lookups, updates, retractions."""

    def __init__(
        self,
        topic: str,
        source_topic: str,
        sink_topic: str,
        fingerprinter: Fingerprinter,
        passes: Passes,
        policy_version: str,
        monotonic: Callable[[], float],
        *,
        retract: bool = True,
        unknown_passed: bool = False,
        new_store: Callable[[int], LedgerStore] = lambda _: LedgerState(),
    ) -> None:
        self.topic = topic
        self._source_topic = source_topic
        self._sink_topic = sink_topic
        self._fingerprint = fingerprinter
        self._passes = passes
        self._headers = (
            RETRACTION_HEADER,
            (HEADER_POLICY, policy_version.encode()),
        )
        self._monotonic = monotonic
        self._retract = retract
        self._unknown_passed = unknown_passed
        self._new_store = new_store
        self._states: dict[int, LedgerStore] = {}
        self._at: dict[int, int] = {}
        """Per partition: the committed ledger offset its state stands at."""
        self._restores: dict[int, _Restore] = {}
        self._restored: list[int] = []
        self._holds: dict[int, int] = {}
        """Ledger partitions restored to their end on the group's first start: the offset
        to commit, kept until a commit includes it (an abort must not lose it)."""
        self._undo: dict[int, Undo] = {}
        self._pending_records: Counter[str] = Counter()
        self._pending_retractions: Counter[str] = Counter()
        self.stats = LedgerStats()
        self.exact: ExactRetractions | None = None
        """With exposure: what a ledger update retracts, exactly the exposed
        identifiers it no longer allows (:meth:`enforcer.live.exposure.LiveExposure.
        ledger_changed`), instead of every identifier that would have passed before."""
        self.previous: Fingerprinter | None = None
        """During a key rotation (with exposure): the key in force before it, so that a
        ledger update can name its identifiers' fingerprints under that key too."""

    def use_policy(self, passes: Passes, policy_version: str, *, retract: bool) -> None:
        """A reloaded policy is in force (between transactions): later ledger updates
        are judged by it, and their retractions carry its version."""
        self._passes = passes
        self._headers = (RETRACTION_HEADER, (HEADER_POLICY, policy_version.encode()))
        self._retract = retract

    # -- lookups (the decision step's LedgerLookup) ----------------------------------

    def subject(self, partition: int, subject_id: str) -> SubjectGrants | None:
        """What the partition's ledger grants the subject's identifiers, or ``None`` when
        it does not know the subject (or this worker holds no such partition)."""
        state = self._states.get(partition)
        if state is None:
            return None
        return state.subject(subject_id)

    def store(self, partition: int) -> LedgerStore | None:
        """The partition's ledger state, when this worker holds it."""
        return self._states.get(partition)

    def live(self, partition: int, offset: int) -> bool:
        """Whether the record at ``offset`` would be applied live (in the transaction,
        with its retractions), not silently by a restore nor skipped."""
        if partition not in self._states:
            return False
        restore = self._restores.get(partition)
        return restore is None or (restore.target is not None and offset >= restore.target)

    def restoring(self, partition: int) -> bool:
        """Whether the partition's ledger is still being restored."""
        return partition in self._restores

    # -- rebalances -----------------------------------------------------------------

    def assign(
        self, partitions: list[TopicPartition], committed: Committed
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """The assignment to make (ledger partitions to restore start at the beginning)
        and the source partitions to pause until their ledger is restored."""
        ledger = [tp for tp in partitions if tp.topic == self.topic]
        offsets = {tp.partition: tp.offset for tp in committed(ledger)} if ledger else {}
        kept: dict[int, LedgerStore] = {}
        assignment, paused = [], []
        ledger_numbers = {tp.partition for tp in ledger}
        for tp in partitions:
            if tp.topic != self.topic:
                assignment.append(tp)
                if tp.partition not in ledger_numbers:
                    # Its ledger partition went to a worker that reads another set of
                    # topics (a rollout under way): its events wait, rather than be
                    # judged without their ledger.
                    paused.append(TopicPartition(tp.topic, tp.partition))
                    log.warning(
                        "%s[%d] waits: its ledger partition %s[%d] is assigned to another "
                        "worker (do all workers read the same ledger topic?)",
                        tp.topic,
                        tp.partition,
                        self.topic,
                        tp.partition,
                    )
                continue
            number = tp.partition
            at = offsets.get(number, -1)
            target = at if at >= 0 else None
            state = self._states.get(number)
            if state is not None and target is not None and self._at.get(number) == target:
                kept[number] = state  # given back unchanged: no restore needed
                assignment.append(TopicPartition(self.topic, number, target))
                log.info("%s: %s[%d] at offset %d", KEPT_LOG, self.topic, number, target)
                continue
            if state is not None:
                state.close()
            kept[number] = self._new_store(number)
            self._restores[number] = _Restore(target, self._monotonic())
            assignment.append(TopicPartition(self.topic, number, OFFSET_BEGINNING))
            paused.append(TopicPartition(self._source_topic, number))
        for number, state in self._states.items():
            if number not in kept:
                state.close()
        self._states = kept
        self._at = {n: at for n, at in self._at.items() if n in kept}
        self._holds = {}
        self._restores = {n: r for n, r in self._restores.items() if n in kept}
        self._undo = {}
        self._restored = []
        self._refresh_sizes()
        self.stats.restoring = len(self._restores)
        return assignment, paused

    def revoked(self) -> None:
        """Partitions are going (the open transaction was committed or aborted): states
        stay, to be reused if the same partitions come back unchanged; unfinished
        restores are dropped."""
        for number in list(self._restores):
            state = self._states.pop(number, None)
            if state is not None:
                state.close()
            self._at.pop(number, None)
        self._restores = {}
        self._restored = []
        self._holds = {}
        self.stats.restoring = 0

    def close(self) -> None:
        """Release every store (the disk store removes its files)."""
        for state in self._states.values():
            state.close()
        self._states = {}

    # -- reading --------------------------------------------------------------------

    def read(self, message: Message) -> LedgerRead | None:
        """Apply one ledger record; ``None`` when a restore took it silently."""
        number, offset = message.partition(), message.offset()
        assert number is not None and offset is not None
        if number not in self._states:
            return None  # left over from an earlier assignment: not this worker's now
        restore = self._restores.get(number)
        if restore is not None:
            if restore.target is None or offset < restore.target:
                self._apply_silently(number, message)
                restore.records += 1
                return None
            self._finish(number, restore, restore.target)
        return self._apply(number, offset, message)

    def at_end(self, partition: int, offset: int) -> None:
        """The consumer reached the partition's end (``offset``): a restore is done."""
        restore = self._restores.get(partition)
        if restore is None:
            return
        if restore.target is None:
            self._holds[partition] = offset
            self._finish(partition, restore, offset)
        else:
            # The end can lie past the committed offset by a transaction marker.
            self._finish(partition, restore, restore.target)

    def take_restored(self) -> list[int]:
        """Partitions whose restore finished since the last call."""
        done, self._restored = self._restored, []
        return done

    def holds(self) -> dict[int, int]:
        """Ledger offsets a transaction must commit although it read nothing there:
        partitions restored to their end on the group's first start, until committed."""
        return self._holds

    def _finish(self, number: int, restore: _Restore, at: int) -> None:
        del self._restores[number]
        self._at[number] = at
        seconds = self._monotonic() - restore.started
        stats = self.stats
        stats.restoring = len(self._restores)
        stats.restored_records += restore.records
        stats.restores += 1
        stats.restore_seconds += seconds
        stats.last_restore_seconds = seconds
        self._refresh_sizes()
        self._restored.append(number)
        state = self._states[number]
        log.info(
            "%s: %s[%d] up to offset %d, %d record(s), %d identifier(s) in %.1fs",
            RESTORED_LOG,
            self.topic,
            number,
            at,
            restore.records,
            len(state),
            seconds,
        )

    def _apply_silently(self, number: int, message: Message) -> None:
        parsed = parse_ledger_record(message.key(), message.value())
        if isinstance(parsed, SubjectWithheld):
            self._states[number].withhold(parsed.subject_id, "")
            return
        if isinstance(parsed, ParseFailure):
            return  # dead-lettered when it was first read (or before the enforcer ran)
        apply_record(self._states[number], parsed, self._fingerprint, "")

    def _apply(self, number: int, offset: int, message: Message) -> LedgerRead:
        parsed = parse_ledger_record(message.key(), message.value())
        if isinstance(parsed, ParseFailure):
            return self._refused(number, offset, message, parsed)
        exact = self.exact
        record_time = _record_time(message)
        retractions = apply_record(
            self._states[number],
            parsed,
            self._fingerprint,
            record_time,
            None if exact is not None else self._passes,
            self._undo.setdefault(number, {}),
            unknown_passed=self._unknown_passed,
        )
        self._pending_records["applied"] += 1
        if exact is not None:
            if isinstance(parsed, SubjectErasure):
                reason, at = RetractionReason.SUBJECT_ERASED, record_time
                return LedgerRead(exact(number, parsed.subject_id, reason, at), None)
            reason, at = RetractionReason.PURPOSE_WITHDRAWN, parsed.updated_at
            previous = self.previous
            if previous is None:
                return LedgerRead(exact(number, parsed.subject_id, reason, at), None)
            rekeyed = _rekeyed(parsed, previous, self._fingerprint)
            return LedgerRead(exact(number, parsed.subject_id, reason, at, rekeyed), None)
        for retraction in retractions:
            self._pending_retractions[retraction.reason.value] += 1
        if not self._retract:  # audit mode: counted, nothing written
            return LedgerRead([], None)
        return LedgerRead([self._record(r) for r in retractions], None)

    def _refused(
        self, number: int, offset: int, message: Message, failure: ParseFailure
    ) -> LedgerRead:
        """An invalid record is a dead letter; refused under a key that names a subject
        (:class:`SubjectWithheld`), it also leaves that subject no purpose."""
        self._pending_records["deadlettered"] += 1
        record = InputRecord(message.key(), message.value(), (), Source(self.topic, number, offset))
        dead = dead_letter(record, failure.reason, failure.message)
        if isinstance(failure, SubjectWithheld):
            return LedgerRead(self._withhold(number, failure.subject_id, message), dead)
        return LedgerRead([], dead)

    def _withhold(self, number: int, subject_id: str, message: Message) -> list[OutputRecord]:
        """A refused value leaves its key's subject no purpose: what passed is
        retracted (``purpose-withdrawn``, at the record's time), as an update that
        withdrew everything would be."""
        exact = self.exact
        record_time = _record_time(message)
        undo = self._undo.setdefault(number, {})
        state = self._states[number]
        if exact is not None:
            state.withhold(subject_id, record_time, None, undo)
            return exact(number, subject_id, RetractionReason.PURPOSE_WITHDRAWN, record_time)
        retractions = state.withhold(subject_id, record_time, self._passes, undo)
        for retraction in retractions:
            self._pending_retractions[retraction.reason.value] += 1
        if not self._retract:  # audit mode: counted, nothing written
            return []
        return [self._record(r) for r in retractions]

    def _record(self, retraction: Retraction) -> OutputRecord:
        return OutputRecord(
            self._sink_topic,
            retraction.subject_id.encode("utf-8", "surrogatepass"),
            retraction_value(retraction),
            self._headers,
        )

    # -- transactions ---------------------------------------------------------------

    def committed(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """The open transaction committed with these offsets."""
        for (topic, number), offset in offsets.items():
            if topic == self.topic and number in self._states:
                self._at[number] = offset
                self._holds.pop(number, None)
        self._undo = {}
        for state in self._states.values():
            # Nothing can be rolled back now: the purpose sets no identifier refers to
            # any more go (grants that keep changing would grow the table for ever).
            state.forget_unused_purposes()
        self.stats.records.update(self._pending_records)
        self.stats.retractions.update(self._pending_retractions)
        self._pending_records.clear()
        self._pending_retractions.clear()
        self._refresh_sizes()

    def rolled_back(self) -> None:
        """The open transaction was aborted: its ledger records will be read again."""
        for number, undo in self._undo.items():
            state = self._states.get(number)
            if state is not None:
                state.rollback(undo)
        self._undo = {}
        self._pending_records.clear()
        self._pending_retractions.clear()
        self._refresh_sizes()

    def _refresh_sizes(self) -> None:
        self.stats.identifiers = sum(len(s) for s in self._states.values())
        self.stats.subjects = sum(s.subjects for s in self._states.values())


def _record_time(message: Message) -> str:
    """The record's timestamp (RFC 3339): a tombstone has no ``updated_at``."""
    _, millis = message.timestamp()
    return rfc3339(kafka_time(millis))


def _rekeyed(update: SubjectUpdate, previous: Fingerprinter, current: Fingerprinter) -> RekeyedMacs:
    """The update's identifiers under both keys, computed only if exposure asks (it does
    for a subject holding an entry made under the previous key): not remembered, as a
    restore's fingerprints are not."""

    def macs() -> dict[tuple[str, bytes], bytes]:
        return {
            (kind, previous.mac_once(kind, value)): current.mac_once(kind, value)
            for kind, value, _ in update.identifiers
        }

    return macs
