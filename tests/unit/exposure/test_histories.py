"""Random histories of forwards, ledger withdrawals and erasures, policy changes and
transactions committed or aborted: the retractions are exactly the exposed identifiers
no longer allowed, nothing is written unless the subject's value changed, an abort puts
everything back, and the compacted topic of what was written restores the same state
(docs/exposure.md)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import NamedTuple

from hypothesis import event, given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.exposure.model import (
    ExposureEntry,
    Forward,
    SubjectExposure,
    exposure_value,
    seconds_of,
    text_of,
)
from enforcer.exposure.retract import Allowed, allowed_under, retractions_of
from enforcer.exposure.state import ExposureState, ExposureWrite, Undo
from enforcer.ledger.state import Grant, LedgerState, RetractionReason
from enforcer.ledger.state import Undo as LedgerUndo

from ..conftest import KEY

FP = Fingerprinter(KEY)
TAGS = ("marketing.advertising", "analytics", "security.mfa")
SUBJECTS = ("s0", "s1", "s2", "s3")
VALUES = ("a@x.org", "b@x.org", "c@x.org")
SINKS = ("sink-a", "sink-b")
START = seconds_of("2026-11-30T10:00:00Z")
DAY = 86_400

Identity = tuple[str, str, str]  # sink, type, fingerprint

Claimed = tuple[str, tuple[str, ...]]  # a raw value and purposes


class ForwardOp(NamedTuple):
    """A record of ``subject`` decided for ``sink``: what of it passes is forwarded."""

    subject: str
    sink: str
    identifiers: list[Claimed]


class LedgerOp(NamedTuple):
    """A ledger value for ``subject`` (``grants``) or a tombstone (``None``)."""

    subject: str
    grants: list[Claimed] | None


class PolicyOp(NamedTuple):
    """A new policy version: an identifier passes when it has one of ``allowed``."""

    allowed: frozenset[str]


class TransactionOp(NamedTuple):
    """The end of a transaction: committed, or aborted (everything since the last end
    is rolled back, in the exposure state and the ledger alike)."""

    commit: bool


Op = ForwardOp | LedgerOp | PolicyOp | TransactionOp

ADS, ANALYTICS, MFA = TAGS
# Purpose sets with and without the one the first policy allows, half and half.
_purposes = st.sampled_from([(ADS,), (ADS, MFA), (ANALYTICS, ADS), (MFA,), (), (ANALYTICS,)])
_claimed = st.tuples(st.sampled_from(VALUES), _purposes)
_op: st.SearchStrategy[Op] = st.one_of(
    st.builds(
        ForwardOp,
        st.sampled_from(SUBJECTS),
        st.sampled_from(SINKS),
        st.lists(_claimed, min_size=1, max_size=3),
    ),
    st.builds(
        ForwardOp,
        st.sampled_from(SUBJECTS),
        st.sampled_from(SINKS),
        st.lists(_claimed, min_size=1, max_size=3),
    ),
    st.builds(LedgerOp, st.sampled_from(SUBJECTS), st.lists(_claimed, max_size=3) | st.none()),
    st.builds(PolicyOp, st.frozensets(st.sampled_from(TAGS))),
    st.builds(TransactionOp, st.booleans()),
)
_step = st.tuples(_op, st.integers(0, 40 * 3600))


@dataclass
class World:
    """The reference: what the ledger says, the policy, and what is exposed, as plain
    dictionaries, independent of the state's layout."""

    mode: LedgerMode
    allowed_tags: frozenset[str] = frozenset({"marketing.advertising"})
    version: int = 1
    ledger: dict[str, dict[str, tuple[str, ...]] | None] = field(default_factory=dict)
    exposed: dict[str, dict[Identity, ExposureEntry]] = field(default_factory=dict)

    def passes(self, _kind: str, purposes: tuple[str, ...]) -> bool:
        return bool(self.allowed_tags & set(purposes))

    def granted(self, subject: str, fingerprint: str) -> tuple[str, ...] | None:
        if subject not in self.ledger:
            return None
        grants = self.ledger[subject]
        if grants is None:
            return ()  # erased: known, no purpose
        return grants.get(fingerprint)

    def judged(self, subject: str, fingerprint: str, claimed: tuple[str, ...]) -> Forward | None:
        """What the decision does with an identifier now: forwarded (and judged by
        what), or not."""
        granted = None if self.mode is LedgerMode.OFF else self.granted(subject, fingerprint)
        if granted is not None:
            purposes, by_ledger = granted, True
        elif self.mode is LedgerMode.AUTHORITATIVE:
            return None
        else:
            purposes, by_ledger = claimed, False
        if not self.passes("email", purposes):
            return None
        return Forward("", "email", fingerprint, FP.key_id, purposes, by_ledger, f"v{self.version}")

    def allowed_now(self, subject: str, entry: ExposureEntry) -> bool:
        """Would the identifier be forwarded now? Judged by the ledger when it knows
        it; unknown, by the purposes it was judged by only when those were the event's
        (fallback) or the ledger is not read."""
        if self.mode is LedgerMode.OFF:
            return self.passes("email", entry.purposes)
        granted = self.granted(subject, entry.fingerprint)
        if granted is not None:
            return self.passes("email", granted)
        if self.mode is LedgerMode.AUTHORITATIVE or entry.by_ledger:
            return False
        return self.passes("email", entry.purposes)

    def forward(self, subject: str, forward: Forward, at: int) -> None:
        entries = self.exposed.setdefault(subject, {})
        identity = (forward.sink_topic, forward.identifier_type, forward.fingerprint)
        old = entries.get(identity)
        new = ExposureEntry(
            *identity,
            forward.key_id,
            forward.purposes,
            forward.by_ledger,
            forward.policy_version,
            text_of(at),
            text_of(at),
        )
        if old is None:
            entries[identity] = new
            return
        last = seconds_of(old.last_forwarded_at)
        if new[3:7] == old[3:7] and at // DAY <= last // DAY:
            return  # same key id, purposes, ledger flag and policy, same day
        entries[identity] = new._replace(
            first_forwarded_at=old.first_forwarded_at, last_forwarded_at=text_of(max(last, at))
        )

    def value(self, subject: str) -> bytes | None:
        return exposure_value(
            SubjectExposure(subject, tuple(self.exposed.get(subject, {}).values()))
        )


def _partition(subject: str) -> int:
    return SUBJECTS.index(subject) % 2


class Run:
    """One history applied to the state and the reference side by side, checked at
    every step."""

    def __init__(self, mode: LedgerMode) -> None:
        self.mode = mode
        self.world = World(mode)
        self.state, self.ledger = ExposureState(), LedgerState()
        self.topic: dict[tuple[int, bytes], bytes | None] = {}
        self.ever_forwarded: set[tuple[str, Identity]] = set()
        self.retracted = 0
        self.undo: Undo = {}
        self.ledger_undo: LedgerUndo = {}
        self.committed = self.snapshot()

    def snapshot(self) -> tuple[object, ...]:
        world = self.world
        return copy.deepcopy(
            (world.allowed_tags, world.version, world.ledger, world.exposed, self.topic)
        )

    def end(self, commit: bool) -> None:
        """Commit: what the transaction did stays. Abort: the state and the ledger are
        rolled back to where it began, and so is everything the reference holds."""
        if not commit:
            self.state.rollback(self.undo)
            self.ledger.rollback(self.ledger_undo)
            world = self.world
            (world.allowed_tags, world.version, world.ledger, world.exposed, self.topic) = (
                copy.deepcopy(self.committed)  # type: ignore[assignment]
            )
        self.undo.clear()
        self.ledger_undo.clear()
        self.committed = self.snapshot()

    def allowed(self) -> Allowed:
        return allowed_under(self.world.passes, self.mode, self.ledger)

    def written(self, w: ExposureWrite | None, subject: str) -> None:
        """A write happens exactly when the subject's value changes, and is that value."""
        before = self.topic.get((_partition(subject), subject.encode()))
        if w is None:
            assert self.world.value(subject) == before
            return
        assert w.value != before
        assert w == ExposureWrite(_partition(subject), subject.encode(), self.world.value(subject))
        self.topic[(w.partition, w.key)] = w.value

    def forward(self, subject: str, sink: str, identifiers: list[Claimed], at: int) -> None:
        forwards = []
        for value, claimed in identifiers:
            judged = self.world.judged(subject, FP("email", value), claimed)
            if judged is not None:
                forwards.append(judged._replace(sink_topic=sink))
        if not forwards:
            return  # nothing of this record reached the sink
        for forward in forwards:
            self.world.forward(subject, forward, at)
            self.ever_forwarded.add((subject, (sink, "email", forward.fingerprint)))
        write = self.state.forwarded(_partition(subject), subject, forwards, text_of(at), self.undo)
        self.written(write, subject)

    def ledger_update(self, subject: str, grants: list[Claimed] | None, at: int) -> None:
        """A ledger value (``grants``) or a tombstone (``None``), then its retractions."""
        when = text_of(at)
        if grants is not None:
            granted = {FP("email", v): p for v, p in grants}
            self.world.ledger[subject] = granted
            grants_now = [Grant("email", f, p) for f, p in granted.items()]
            self.ledger.replace(subject, when, grants_now, None, self.ledger_undo)
            reason = RetractionReason.PURPOSE_WITHDRAWN
        else:
            self.world.ledger[subject] = None
            self.ledger.erase(subject, when, None, self.ledger_undo)
            reason = RetractionReason.SUBJECT_ERASED
        exposed = self.world.exposed.get(subject, {})
        expected = {i for i, e in exposed.items() if not self.world.allowed_now(subject, e)}
        removed, write = self.state.retract(_partition(subject), subject, self.allowed(), self.undo)
        assert {e.identity for e in removed} == expected
        assert all((subject, i) in self.ever_forwarded for i in expected)
        for identity in expected:
            del exposed[identity]
        retractions = retractions_of(subject, removed, reason, ledger_updated_at=when)
        assert {(r.sink_topic, r.fingerprint) for r in retractions} == {
            (i[0], i[2]) for i in expected
        }
        self.retracted += len(retractions)
        self.written(write, subject)

    def policy(self, tags: frozenset[str]) -> None:
        world = self.world
        world.allowed_tags, world.version = tags, world.version + 1
        version = f"v{world.version}"
        expected = {
            (s, i)
            for s, entries in world.exposed.items()
            for i, e in entries.items()
            if not world.allowed_now(s, e)
        }
        got = set()
        for partition in (0, 1):
            rejudged = self.state.rejudge(partition, self.allowed(), version, self.undo)
            for r in rejudged.retractions:
                assert (r.reason, r.policy_version) == (RetractionReason.POLICY_CHANGED, version)
                got.add((r.subject_id, (r.sink_topic, r.identifier_type, r.fingerprint)))
            assert {w.key.decode() for w in rejudged.writes} == {
                r.subject_id for r in rejudged.retractions
            }
            for s, identity in expected:
                if _partition(s) == partition:
                    world.exposed[s].pop(identity, None)
            for w in rejudged.writes:
                self.written(w, w.key.decode())
        assert got == expected
        self.retracted += len(got)

    def check(self) -> None:
        """The state equals the reference."""
        for subject in SUBJECTS:
            assert self.state.value(_partition(subject), subject) == self.world.value(subject)
        assert len(self.state) == sum(len(es) for es in self.world.exposed.values())

    def check_restore(self) -> None:
        """The compacted topic of what was written restores the same state."""
        restored = ExposureState()
        for (partition, key), value in self.topic.items():
            assert restored.restore(partition, key, value) is None
        for subject in SUBJECTS:
            p = _partition(subject)
            assert restored.exposure(p, subject) == self.state.exposure(p, subject)
        assert len(restored) == len(self.state)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(LedgerMode)),
    st.lists(st.lists(_claimed, max_size=3), min_size=len(SUBJECTS), max_size=len(SUBJECTS)),
    st.lists(_step, min_size=10, max_size=50),
)
def test_retractions_are_exactly_the_exposed_identifiers_no_longer_allowed(
    mode: LedgerMode, ledger: list[list[Claimed]], steps: list[tuple[Op, int]]
) -> None:
    run = Run(mode)
    at = START
    for subject, grants in zip(SUBJECTS, ledger, strict=True):  # the ledger as restored
        run.ledger_update(subject, grants, at)
    for op, elapsed in steps:
        at += elapsed
        if isinstance(op, ForwardOp):
            run.forward(op.subject, op.sink, op.identifiers, at)
        elif isinstance(op, LedgerOp):
            run.ledger_update(op.subject, op.grants, at)
        elif isinstance(op, PolicyOp):
            run.policy(op.allowed)
        else:
            run.end(op.commit)
        run.check()
    run.check_restore()
    event(f"{mode.value}: retractions: {min(run.retracted, 5)}{'+' if run.retracted >= 5 else ''}")
