"""The live exposure's bookkeeping, without a broker (docs/exposure.md, "In a running
worker"): a restore from the beginning pauses the source partition until its end;
forwards are written to the source record's partition only when the subject's value
changes; a ledger update retracts exactly the exposed identifiers it no longer allows;
a new policy re-judges each restored partition once; an abort undoes the changes and
makes a re-judgement due again; audit mode counts and writes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import default_policy_bytes, load_policy, parse_policy
from enforcer.core.step import InputRecord, Outcome, Source, Step
from enforcer.exposure.model import SubjectExposure, parse_exposure_record
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.model import GrantedIdentifier as G
from enforcer.ledger.model import SubjectUpdate
from enforcer.ledger.state import LedgerState, LedgerStore, RetractionReason
from enforcer.ledger.store import apply_record
from enforcer.live.exposure import LiveExposure
from enforcer.outputs.records import OutputRecord
from enforcer.testing.policies import phones_never_for_advertising

from ..conftest import KEY
from .test_ledger import FakeMessage

EXPOSURE, SOURCE, SINK = "exposure", "events", "audience"
ADS, MFA = ["marketing.advertising"], ["security.mfa"]
FP = Fingerprinter(KEY)
AT = "2026-12-06T10:00:00Z"
NOW = datetime(2026, 12, 6, 10, tzinfo=UTC)


def default() -> Policy:
    return load_policy(None)


def no_phones(mode: Mode = Mode.ENFORCE) -> Policy:
    """The default, and phone numbers never for advertising."""
    policy = parse_policy(
        phones_never_for_advertising(), origin="no-phones.yaml", destination="audience-building"
    )
    return policy.with_mode(mode)


def live(
    policy: Policy | None = None,
    ledgers: dict[int, LedgerStore] | None = None,
    mode: LedgerMode = LedgerMode.OFF,
    **settings: Any,
) -> LiveExposure:
    """A live exposure over the test's topics (``settings``: LiveExposure's own)."""
    clock = iter(range(1000))
    held = ledgers or {}
    return LiveExposure(
        EXPOSURE,
        SOURCE,
        SINK,
        FP.key_id,
        policy or default(),
        mode,
        held.get,
        lambda: float(next(clock)),
        **settings,
    )


def committed(partitions: list[TopicPartition]) -> list[TopicPartition]:
    return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]


def restored(exposure: LiveExposure, *partitions: int) -> None:
    """Assign and restore ``partitions`` of an empty topic."""
    tps = [TopicPartition(t, p) for p in partitions for t in (SOURCE, EXPOSURE)]
    exposure.assign(tps, committed)
    for p in partitions:
        exposure.at_end(p)
    exposure.take_restored()
    assert exposure.rejudge_due(lambda _: True)[1] == sorted(partitions)  # nothing exposed


def decided(
    step: Step, partition: int, subject: str, identifiers: list[tuple[str, str, list[str]]]
) -> Outcome:
    value = orjson.dumps(
        {
            "event_id": "e1",
            "subject_id": subject,
            "occurred_at": AT,
            "identifiers": [{"type": k, "value": v, "purposes": p} for k, v, p in identifiers],
        }
    )
    return step(InputRecord(subject.encode(), value, (), Source(SOURCE, partition, 7)))


def step_of(policy: Policy, ledger: LedgerState | None = None) -> Step:
    lookup = None if ledger is None else WholeLedger(ledger)
    return Step(policy, FP, FixedClock(NOW), lookup, exposure=True)


def retractions(outputs: list[OutputRecord]) -> list[dict[str, str]]:
    return [orjson.loads(o.value or b"")["retraction"] for o in outputs if o.topic == SINK]


def rejudged(exposure: LiveExposure, ready: Callable[[int], bool]) -> list[OutputRecord]:
    """What re-judging every due partition that is ``ready`` retracts, whole."""
    outputs, _ = exposure.rejudge_due(ready, budget=1_000_000)
    return outputs


def writes(outputs: list[OutputRecord]) -> list[OutputRecord]:
    return [o for o in outputs if o.topic == EXPOSURE]


def test_assignment_restores_from_the_beginning_and_pauses_the_source_until_the_end() -> None:
    exposure = live()
    asked: list[list[TopicPartition]] = []

    def committed_asked(partitions: list[TopicPartition]) -> list[TopicPartition]:
        asked.append(partitions)
        return committed(partitions)

    assignment, paused = exposure.assign(
        [TopicPartition(SOURCE, 0), TopicPartition(EXPOSURE, 0)], committed_asked
    )
    assert [(tp.topic, tp.offset) for tp in assignment if tp.topic == EXPOSURE] == [
        (EXPOSURE, OFFSET_BEGINNING)
    ]
    assert [(tp.topic, tp.partition) for tp in paused] == [(SOURCE, 0)]
    # The source's committed offsets are asked first: stable once an earlier owner's
    # transaction settled, so its exposure writes are readable.
    assert [(tp.topic, tp.partition) for tp in asked[0]] == [(SOURCE, 0)]
    assert exposure.restoring(0)
    exposure.read(cast(Message, FakeMessage(0, 0, "s1", _one_entry_value("s1"))))
    exposure.at_end(0)
    assert not exposure.restoring(0)
    assert exposure.take_restored() == [0]
    assert exposure.stats.identifiers == 1 and exposure.stats.subjects == 1


def _one_entry_value(subject: str) -> bytes:
    return orjson.dumps(
        {
            "format": 1,
            "subject_id": subject,
            "entries": [
                {
                    "sink_topic": SINK,
                    "identifier_type": "phone",
                    "fingerprint": FP("phone", "+14155550100"),
                    "key_id": FP.key_id,
                    "purposes": ADS,
                    "by_ledger": False,
                    "policy_version": "sha256:old",
                    "first_forwarded_at": AT,
                    "last_forwarded_at": AT,
                }
            ],
        }
    )


def test_forwards_are_written_to_the_source_partition_once_per_transaction() -> None:
    exposure = live()
    restored(exposure, 2)
    step = step_of(default())
    first = decided(step, 2, "s1", [("email", "a@x.org", ADS)])
    exposure.forwarded(first, AT)
    exposure.forwarded(first, AT)  # the same forward again: no change
    exposure.forwarded(decided(step, 2, "s1", [("phone", "+14155550100", ADS)]), AT)
    [write] = exposure.pending_writes()  # changed twice, written once, as it ends
    assert write.topic == EXPOSURE and write.partition == 2 and write.key == b"s1"
    assert b"a@x.org" not in (write.value or b"")
    parsed = parse_exposure_record(write.key, write.value)
    assert isinstance(parsed, SubjectExposure)
    assert [e.identifier_type for e in parsed.entries] == ["email", "phone"]
    exposure.committed()
    assert exposure.stats.writes == 1 and exposure.stats.identifiers == 2
    exposure.forwarded(first, AT)
    assert exposure.pending_writes() == []  # nothing changed since


def test_a_ledger_update_retracts_exactly_the_exposed_identifiers_it_withdraws() -> None:
    ledger = LedgerState()
    exposure = live(ledgers={0: ledger}, mode=LedgerMode.AUTHORITATIVE)
    restored(exposure, 0)
    grant = SubjectUpdate(
        "s1", AT, (G("email", "a@x.org", tuple(ADS)), G("phone", "+14155550100", tuple(ADS)))
    )
    apply_record(ledger, grant, FP, AT)
    step = step_of(default(), ledger)
    outcome = decided(step, 0, "s1", [("email", "a@x.org", ADS)])  # the phone never flowed
    exposure.forwarded(outcome, AT)
    assert len(exposure.pending_writes()) == 1
    exposure.committed()
    withdraw = SubjectUpdate(
        "s1", "2026-12-07T00:00:00Z", (G("email", "a@x.org", ()), G("phone", "+14155550100", ()))
    )
    apply_record(ledger, withdraw, FP, AT)
    outputs = exposure.ledger_changed(
        0, "s1", RetractionReason.PURPOSE_WITHDRAWN, "2026-12-07T00:00:00Z"
    )
    assert [(r["identifier_type"], r["reason"]) for r in retractions(outputs)] == [
        ("email", "purpose-withdrawn")
    ]
    assert writes(outputs) == []  # exposure's own records come before the commit
    assert [w.value for w in exposure.pending_writes()] == [None]  # nothing stays exposed
    assert exposure.ledger_changed(0, "s1", RetractionReason.SUBJECT_ERASED, AT) == []


def test_a_new_policy_rejudges_each_restored_partition_once_before_its_events() -> None:
    exposure = live()
    restored(exposure, 0, 1)
    step = step_of(default())
    for partition, subject in ((0, "s0"), (1, "s1")):
        outcome = decided(
            step,
            partition,
            subject,
            [("email", f"{subject}@x.org", ADS), ("phone", "+14155550100", ADS)],
        )
        exposure.forwarded(outcome, AT)
    assert rejudged(exposure, lambda _: True) == []  # under the policy they flowed by
    exposure.committed()
    exposure.use_policy(no_phones())
    assert rejudged(exposure, lambda p: p != 1) != []  # partition 1 is not ready yet
    outputs = rejudged(exposure, lambda _: True)
    assert [(r["subject_id"], r["identifier_type"], r["reason"]) for r in retractions(outputs)] == [
        ("s1", "phone", "policy-changed")
    ]
    assert retractions(outputs)[0]["policy_version"] == no_phones().version
    assert rejudged(exposure, lambda _: True) == []  # once
    exposure.committed()
    assert exposure.stats.retractions == {"policy-changed": 2}
    assert exposure.stats.identifiers == 2


def test_an_abort_undoes_a_rejudgement_and_makes_it_due_again() -> None:
    exposure = live()
    restored(exposure, 0)
    outcome = decided(step_of(default()), 0, "s0", [("phone", "+14155550100", ADS)])
    exposure.forwarded(outcome, AT)
    exposure.committed()
    exposure.use_policy(no_phones())
    first = rejudged(exposure, lambda _: True)
    assert len(retractions(first)) == 1
    exposure.rolled_back()
    assert exposure.stats.identifiers == 1
    again = rejudged(exposure, lambda _: True)
    assert retractions(again) == retractions(first)
    exposure.committed()
    assert exposure.stats.retractions == {"policy-changed": 1}
    assert exposure.stats.identifiers == 0


def test_an_aborted_forward_is_forgotten() -> None:
    exposure = live()
    restored(exposure, 0)
    outcome = decided(step_of(default()), 0, "s0", [("email", "a@x.org", ADS)])
    exposure.forwarded(outcome, AT)
    exposure.rolled_back()
    assert exposure.stats.identifiers == 0
    assert exposure.pending_writes() == []
    exposure.forwarded(outcome, AT)
    assert len(exposure.pending_writes()) == 1  # written again when redone


def test_audit_mode_counts_retractions_and_writes_nothing() -> None:
    exposure = live(no_phones(Mode.AUDIT))
    restored(exposure, 0)
    exposure.use_policy(default().with_mode(Mode.AUDIT))
    outcome = decided(step_of(default()), 0, "s0", [("phone", "+14155550100", ADS)])
    exposure.forwarded(outcome, AT)  # audit forwards: exposed
    exposure.committed()
    exposure.use_policy(no_phones(Mode.AUDIT))
    assert rejudged(exposure, lambda _: True) == []
    exposure.committed()
    assert exposure.stats.retractions == {"policy-changed": 1}
    assert exposure.stats.identifiers == 1  # still exposed: nothing was retracted


def test_audit_mode_counts_a_reload_s_would_be_retractions_without_waiting_for_a_commit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reload in audit mode with no transaction open (no events coming): what would be
    retracted is counted and logged at once (nothing is written, nothing can be undone),
    not at the next commit."""
    exposure = live(no_phones(Mode.AUDIT))
    restored(exposure, 0)
    exposure.use_policy(default().with_mode(Mode.AUDIT))
    for n, subject in enumerate(("s0", "s1")):
        phone = f"+1415555010{n}"
        exposure.forwarded(decided(step_of(default()), 0, subject, [("phone", phone, ADS)]), AT)
    exposure.committed()
    exposure.use_policy(no_phones(Mode.AUDIT))
    with caplog.at_level(logging.INFO, logger="enforcer"):
        assert rejudged(exposure, lambda _: True) == []
    exposure.settle_unwritten()
    assert exposure.stats.retractions == {"policy-changed": 2}
    assert exposure.stats.identifiers == 2
    assert "2 identifier(s) of 2 subject(s) would be retracted (audit mode)" in caplog.text
    exposure.committed()  # a later commit counts nothing twice
    assert exposure.stats.retractions == {"policy-changed": 2}


def test_a_revoke_forgets_the_partitions() -> None:
    exposure = live()
    restored(exposure, 0)
    outcome = decided(step_of(default()), 0, "s0", [("email", "a@x.org", ADS)])
    exposure.forwarded(outcome, AT)
    exposure.committed()
    exposure.revoked()
    assert exposure.stats.identifiers == 0
    assert rejudged(exposure, lambda _: True) == []


def test_entries_under_a_rotated_key_are_judged_by_their_purposes_until_an_erasure() -> None:
    """After a key rotation the ledger's fingerprints are under the new key, so an entry
    made under the old one cannot be found there: a restart under ``authoritative``
    must not retract it as unknown; an erasure retracts it all the same."""
    ledger = LedgerState()
    exposure = live(ledgers={0: ledger}, mode=LedgerMode.AUTHORITATIVE)
    exposure.assign([TopicPartition(SOURCE, 0), TopicPartition(EXPOSURE, 0)], committed)
    old_key = orjson.loads(_one_entry_value("s1"))
    old_key["entries"][0]["key_id"] = "0" * 16
    exposure.read(cast(Message, FakeMessage(0, 0, "s1", orjson.dumps(old_key))))
    exposure.at_end(0)
    assert rejudged(exposure, lambda _: True) == []
    erased = exposure.ledger_changed(0, "s1", RetractionReason.SUBJECT_ERASED, AT)
    assert [(r["identifier_type"], r["key_id"]) for r in retractions(erased)] == [
        ("phone", "0" * 16)
    ]


def test_a_subject_whose_record_would_be_too_large_is_refused_and_unchanged() -> None:
    """Exposure that cannot be written must not be recorded (nor the record forwarded:
    the engine dead-letters it): the subject stays as it was, nothing is owed."""
    exposure = live(largest=1_500)
    restored(exposure, 0)
    step = step_of(default())
    small = decided(step, 0, "s0", [("email", "a@x.org", ADS)])
    assert exposure.forwarded(small, AT) is None
    many = decided(step, 0, "s0", [("email", f"{n}@x.org", ADS) for n in range(8)])
    size = exposure.forwarded(many, AT)
    assert size is not None and size > 1_500
    [write] = exposure.pending_writes()
    assert len(orjson.loads(write.value or b"")["entries"]) == 1  # as before the refusal
    exposure.committed()
    assert exposure.stats.identifiers == 1


def test_a_large_re_judgement_is_done_a_part_at_a_time_and_the_partition_waits() -> None:
    """At most ``budget`` subjects a pass, so the loop goes on; the partition's events
    wait (not ready) until the last part, and an abort starts it over."""
    exposure = live()
    restored(exposure, 0)
    step = step_of(default())
    for n in range(3):
        exposure.forwarded(decided(step, 0, f"s{n}", [("phone", f"+1415555010{n}", ADS)]), AT)
    exposure.pending_writes()
    exposure.committed()
    assert exposure.ready(0)
    exposure.use_policy(no_phones())
    assert not exposure.ready(0)
    first, finished = exposure.rejudge_due(lambda _: True, budget=2)
    assert len(retractions(first)) == 2 and finished == [] and not exposure.ready(0)
    exposure.rolled_back()  # the part done in the aborted transaction is undone
    parts = [exposure.rejudge_due(lambda _: True, budget=2) for _ in range(2)]
    assert [len(retractions(o)) for o, _ in parts] == [2, 1]
    assert [f for _, f in parts] == [[], [0]] and exposure.ready(0)
    exposure.committed()
    assert exposure.stats.retractions == {"policy-changed": 3}


def test_a_source_partition_without_its_exposure_partition_waits() -> None:
    exposure = live()
    _, paused = exposure.assign(
        [TopicPartition(SOURCE, 0), TopicPartition(SOURCE, 1), TopicPartition(EXPOSURE, 0)],
        committed,
    )
    assert {(tp.topic, tp.partition) for tp in paused} == {(SOURCE, 0), (SOURCE, 1)}
    exposure.at_end(0)
    assert exposure.rejudge_due(lambda _: True)[1] == [0]
    assert exposure.ready(0) and not exposure.ready(1)
    assert exposure.ledger_changed(1, "s1", RetractionReason.SUBJECT_ERASED, AT) == []


def test_a_commit_forgets_the_purpose_sets_no_entry_uses_once_there_are_many(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An identifier forwarded under a new set of tags each time (a campaign id among
    them) leaves the sets it had before unused: at a commit, once more are held than the
    bound, only the sets in use are kept, and what exposure writes does not change."""
    exposure = live(purpose_sets_kept=2)
    restored(exposure, 0)
    step = step_of(default())
    for n in range(3):
        tags = [*ADS, f"campaign.c{n}"]
        exposure.forwarded(decided(step, 0, "s1", [("email", "a@x.org", tags)]), AT)
    [write] = exposure.pending_writes()
    with caplog.at_level(logging.INFO, logger="enforcer.exposure"):
        exposure.committed()
    assert "exposure: 3 purpose set(s) held, 1 still in use, kept" in caplog.text
    parsed = parse_exposure_record(write.key, write.value)
    assert isinstance(parsed, SubjectExposure)
    assert [e.purposes for e in parsed.entries] == [("campaign.c2", "marketing.advertising")]
    # The same forward again: the set kept is found, nothing to write.
    exposure.forwarded(decided(step, 0, "s1", [("email", "a@x.org", [*ADS, "campaign.c2"])]), AT)
    assert exposure.pending_writes() == []


def test_a_new_taxonomy_that_rejects_a_claimed_tag_retracts_what_the_event_claimed_it_for() -> None:
    """A new policy dead-letters a record whose identifier claims a tag outside its
    taxonomy (``unknown: reject``): an identifier exposed by such tags would not have
    reached the sink under it, so the re-judgement retracts it."""
    exposure = live()
    restored(exposure, 0)
    tags = [*ADS, "campaign.c1"]
    exposure.forwarded(decided(step_of(default()), 0, "s0", [("email", "a@x.org", tags)]), AT)
    exposure.forwarded(decided(step_of(default()), 0, "s1", [("email", "b@x.org", ADS)]), AT)
    exposure.committed()
    text = (
        default_policy_bytes()
        + b"\ntaxonomy:\n  purposes: [marketing, security]\n  unknown: reject\n"
    )
    rejecting = parse_policy(text, origin="rejecting.yaml", destination="audience-building")
    assert decided(step_of(rejecting), 0, "s0", [("email", "a@x.org", tags)]).kind.value == (
        "deadlettered"
    )
    exposure.use_policy(rejecting)
    assert [
        (r["subject_id"], r["identifier_type"], r["reason"])
        for r in retractions(rejudged(exposure, lambda _: True))
    ] == [("s0", "email", "policy-changed")]


def test_audit_mode_counts_each_would_be_retraction_once_across_an_abort() -> None:
    """Audit mode, a re-judgement in parts: the first part with no transaction open
    (counted at once), the last in a transaction opened by other partitions' events,
    which is aborted. Nothing was written, so nothing is judged again: each would-be
    retraction is counted once (the count of the part in the aborted transaction was
    lost with it and the whole re-judgement was counted again)."""
    exposure = live(default().with_mode(Mode.AUDIT))
    restored(exposure, 0)
    step = step_of(default())
    for n in range(3):
        exposure.forwarded(decided(step, 0, f"s{n}", [("phone", f"+1415555010{n}", ADS)]), AT)
    exposure.committed()
    exposure.use_policy(no_phones(Mode.AUDIT))
    assert exposure.rejudge_due(lambda _: True, budget=2)[1] == []
    exposure.settle_unwritten()  # the engine, with no transaction open
    assert exposure.rejudge_due(lambda _: True, budget=2)[1] == [0]
    exposure.rolled_back()  # the transaction of the partition's first events
    while not exposure.ready(0):
        exposure.rejudge_due(lambda _: True, budget=2)
        exposure.settle_unwritten()
    exposure.committed()
    assert exposure.stats.retractions == {"policy-changed": 3}
    assert exposure.stats.identifiers == 3  # audit mode: still exposed


def test_audit_mode_does_not_count_again_at_a_restore_what_it_let_through_itself() -> None:
    """Audit mode forwards a phone number its policy stops; exposure keeps it. A
    restart under the same policy re-judges the partition and counts nothing: the
    phone number flowed under this very policy (its finding was counted then). Under
    another policy, it would be retracted: counted."""
    policy = no_phones(Mode.AUDIT)
    first = live(policy)
    restored(first, 0)
    first.use_policy(policy)
    outcome = decided(step_of(policy), 0, "s0", [("phone", "+14155550100", ADS)])
    assert outcome.kind.value == "passed"  # audit mode: forwarded unchanged
    first.forwarded(outcome, AT)
    written = first.pending_writes()
    first.committed()
    assert rejudged(first, lambda _: True) == [] and first.stats.retractions == {}

    def restart(under: Policy) -> LiveExposure:
        again = live(under)
        again.use_policy(under)
        again.assign([TopicPartition(SOURCE, 0), TopicPartition(EXPOSURE, 0)], committed)
        for offset, record in enumerate(written):
            again.read(cast(Message, FakeMessage(0, offset, record.key, record.value)))
        again.at_end(0)
        again.take_restored()
        assert rejudged(again, lambda _: True) == []  # audit mode writes nothing
        again.committed()
        return again

    assert restart(policy).stats.retractions == {}
    assert restart(policy).stats.identifiers == 1  # kept: enforce would retract it
    other = parse_policy(
        phones_never_for_advertising() + b"\n# the same rules, another version\n",
        origin="other.yaml",
        destination="audience-building",
    ).with_mode(Mode.AUDIT)
    assert other.version != policy.version
    assert restart(other).stats.retractions == {"policy-changed": 1}
