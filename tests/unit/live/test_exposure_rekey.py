"""A worker during a key rotation (docs/exposure.md, "Key rotation"), without a broker:
restarted with the new key and the previous one, an identifier forwarded again takes over
its entry made under the previous key, and a ledger withdrawal finds such an entry and
retracts it under its own key id and fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import orjson
from confluent_kafka import Message, TopicPartition

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Outcome, Rekeyable, Source, Step
from enforcer.exposure.model import ExposureEntry, SubjectExposure, parse_exposure_record
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.model import GrantedIdentifier, SubjectUpdate
from enforcer.ledger.retract import passes_under
from enforcer.ledger.state import LedgerState
from enforcer.ledger.store import apply_record
from enforcer.live.exposure import LiveExposure
from enforcer.live.ledger import LiveLedger
from enforcer.outputs.records import OutputRecord
from enforcer.testing.ledger import ledger_value

from .test_ledger import FakeMessage

EXPOSURE, SOURCE, SINK, LEDGER = "exposure", "events", "audience", "purposes"
OLD = Fingerprinter(b"old-key-0123456789abcdef-rotation")
NEW = Fingerprinter(b"new-key-0123456789abcdef-rotation")
ADS, MFA = ("marketing.advertising",), ("security.mfa",)
EMAIL, PHONE = "ann@example.org", "+14155550123"
BEFORE = datetime(2026, 11, 30, 12, tzinfo=UTC)
AT_BEFORE, AT_AFTER = "2026-11-30T12:00:00Z", "2026-12-06T10:00:00Z"


def exposure_of(key: Fingerprinter, previous: Fingerprinter | None = None) -> LiveExposure:
    clock = iter(range(1000))
    return LiveExposure(
        EXPOSURE,
        SOURCE,
        SINK,
        key.key_id,
        load_policy(None),
        LedgerMode.OFF,
        lambda _: None,
        lambda: float(next(clock)),
        previous_key_id=None if previous is None else previous.key_id,
    )


def restored(exposure: LiveExposure, values: list[OutputRecord]) -> None:
    committed = lambda tps: [TopicPartition(t.topic, t.partition, -1001) for t in tps]  # noqa: E731
    exposure.assign([TopicPartition(SOURCE, 0), TopicPartition(EXPOSURE, 0)], committed)
    for offset, record in enumerate(values):
        key = (record.key or b"").decode()
        exposure.read(cast(Message, FakeMessage(0, offset, key, record.value)))
    exposure.at_end(0)
    exposure.take_restored()
    assert exposure.rejudge_due(lambda _: True)[1] == [0]


def decided(step: Step, identifiers: list[tuple[str, str]]) -> Outcome:
    value = orjson.dumps(
        {
            "event_id": "e1",
            "subject_id": "s1",
            "occurred_at": AT_BEFORE,
            "identifiers": [{"type": k, "value": v, "purposes": ADS} for k, v in identifiers],
        }
    )
    return step(InputRecord(b"s1", value, (), Source(SOURCE, 0, 7)))


def entries(record: OutputRecord) -> tuple[ExposureEntry, ...]:
    parsed = parse_exposure_record(record.key, record.value)
    assert isinstance(parsed, SubjectExposure)
    return parsed.entries


def before_the_rotation() -> list[OutputRecord]:
    """What a worker with the old key wrote: the email and phone of s1."""
    exposure = exposure_of(OLD)
    restored(exposure, [])
    step = Step(load_policy(None), OLD, FixedClock(BEFORE), exposure=True)
    exposure.forwarded(decided(step, [("email", EMAIL), ("phone", PHONE)]), AT_BEFORE)
    return exposure.pending_writes()


def test_a_step_given_the_previous_key_lists_rekeyable_identifiers() -> None:
    step = Step(load_policy(None), NEW, FixedClock(BEFORE), exposure=True)
    listed = decided(step, [("email", EMAIL)]).forwarded_identifiers
    assert listed is not None and not isinstance(listed, Rekeyable)
    step = Step(
        load_policy(None), NEW, FixedClock(BEFORE), exposure=True, previous_fingerprinter=OLD
    )
    listed = decided(step, [("email", EMAIL), ("phone", PHONE)]).forwarded_identifiers
    assert isinstance(listed, Rekeyable)
    assert [i.mac for i in listed] == [NEW.mac("email", EMAIL), NEW.mac("phone", PHONE)]
    assert listed.previous_macs() == (OLD.mac("email", EMAIL), OLD.mac("phone", PHONE))
    assert EMAIL not in repr(listed)


def test_restarted_with_the_previous_key_a_forward_re_keys_the_old_entry() -> None:
    exposure = exposure_of(NEW, previous=OLD)
    restored(exposure, before_the_rotation())
    step = Step(
        load_policy(None), NEW, FixedClock(BEFORE), exposure=True, previous_fingerprinter=OLD
    )
    exposure.forwarded(decided(step, [("email", EMAIL)]), AT_AFTER)
    [write] = exposure.pending_writes()
    email, phone = entries(write)
    assert (email.key_id, email.fingerprint) == (NEW.key_id, NEW("email", EMAIL))
    assert (email.first_forwarded_at, email.last_forwarded_at) == (AT_BEFORE, AT_AFTER)
    assert (phone.key_id, phone.fingerprint) == (OLD.key_id, OLD("phone", PHONE))


def test_restarted_without_the_previous_key_a_forward_is_a_second_entry() -> None:
    exposure = exposure_of(NEW)
    restored(exposure, before_the_rotation())
    step = Step(load_policy(None), NEW, FixedClock(BEFORE), exposure=True)
    exposure.forwarded(decided(step, [("email", EMAIL)]), AT_AFTER)
    [write] = exposure.pending_writes()
    assert [(e.identifier_type, e.key_id) for e in entries(write)] == [
        ("email", OLD.key_id),
        ("phone", OLD.key_id),
        ("email", NEW.key_id),
    ]


def rotated_worker(previous: Fingerprinter | None) -> tuple[LiveLedger, LiveExposure]:
    """A worker with the new key under an authoritative ledger, whose exposure holds s1's
    email forwarded by the ledger's purposes under the old key."""
    clock = iter(range(1000))
    ledger = LiveLedger(
        LEDGER, SOURCE, SINK, NEW, passes_under(load_policy(None)), "v", lambda: float(next(clock))
    )
    exposure = LiveExposure(
        EXPOSURE,
        SOURCE,
        SINK,
        NEW.key_id,
        load_policy(None),
        LedgerMode.AUTHORITATIVE,
        lambda _: ledger.store(0),
        lambda: float(next(clock)),
        previous_key_id=None if previous is None else previous.key_id,
    )
    ledger.exact = exposure.ledger_changed
    ledger.previous = previous
    committed = lambda tps: [TopicPartition(t.topic, t.partition, 1) for t in tps]  # noqa: E731
    ledger.assign([TopicPartition(SOURCE, 0), TopicPartition(LEDGER, 0)], committed)
    grant = ledger_value("s1", AT_BEFORE, [("email", EMAIL, ADS), ("phone", PHONE, ADS)])
    assert ledger.read(cast(Message, FakeMessage(0, 0, "s1", grant))) is None  # restore
    # Before the rotation: the old key's worker forwarded the email by the ledger's grant.
    old_exposure = exposure_of(OLD)
    restored(old_exposure, [])
    granted_then = LedgerState()
    apply_record(
        granted_then,
        SubjectUpdate("s1", AT_BEFORE, (GrantedIdentifier("email", EMAIL, ADS),)),
        OLD,
        AT_BEFORE,
    )
    old_step = Step(
        load_policy(None), OLD, FixedClock(BEFORE), WholeLedger(granted_then), exposure=True
    )
    old_exposure.forwarded(decided(old_step, [("email", EMAIL)]), AT_BEFORE)
    values = old_exposure.pending_writes()
    assert entries(values[0])[0].by_ledger
    restored(exposure, values)
    return ledger, exposure


def retractions(outputs: list[OutputRecord]) -> list[dict[str, str]]:
    return [orjson.loads(o.value or b"")["retraction"] for o in outputs if o.topic == SINK]


def withdraw(
    ledger: LiveLedger, identifiers: list[tuple[str, str, tuple[str, ...]]]
) -> list[dict[str, str]]:
    update = ledger_value("s1", AT_AFTER, identifiers)
    read = ledger.read(cast(Message, FakeMessage(0, 1, "s1", update)))
    assert read is not None and read.dead_letter is None
    return retractions(read.outputs)


def test_a_withdrawal_retracts_an_old_key_entry_under_its_own_key_id() -> None:
    ledger, exposure = rotated_worker(previous=OLD)
    retracted = withdraw(ledger, [("email", EMAIL, MFA), ("phone", PHONE, ADS)])
    assert [(r["key_id"], r["fingerprint"], r["reason"]) for r in retracted] == [
        (OLD.key_id, OLD("email", EMAIL), "purpose-withdrawn")
    ]
    [write] = exposure.pending_writes()
    assert write.value is None  # nothing of s1 stays exposed


def test_an_update_that_keeps_the_grant_retracts_nothing() -> None:
    ledger, exposure = rotated_worker(previous=OLD)
    assert withdraw(ledger, [("email", EMAIL, ADS)]) == []
    assert exposure.pending_writes() == []


def test_an_identifier_the_update_no_longer_lists_is_unknown_to_the_ledger() -> None:
    """Under authoritative, unknown is not allowed: its old-key entry is retracted."""
    ledger, _ = rotated_worker(previous=OLD)
    retracted = withdraw(ledger, [("phone", PHONE, ADS)])
    assert [(r["identifier_type"], r["key_id"]) for r in retracted] == [("email", OLD.key_id)]


def test_without_the_previous_key_an_old_key_entry_is_judged_by_its_purposes() -> None:
    """As before the rotation support: the withdrawal cannot find it."""
    ledger, exposure = rotated_worker(previous=None)
    assert withdraw(ledger, [("email", EMAIL, MFA)]) == []
    assert exposure.pending_writes() == []


def test_an_ambiguous_value_retracts_an_old_key_entry_too() -> None:
    """A ledger value refused as ambiguous leaves the subject no purpose: its entry made
    under the previous key is retracted, as after an erasure (no update lists it)."""
    for previous in (OLD, None):
        ledger, exposure = rotated_worker(previous=previous)
        grant = ledger_value("s1", AT_AFTER, [("email", EMAIL, ADS)])
        twice = grant.replace(b'"purposes":', b'"purposes":["security.mfa"],"purposes":', 1)
        read = ledger.read(cast(Message, FakeMessage(0, 1, "s1", twice)))
        assert read is not None and read.dead_letter is not None
        assert [(r["key_id"], r["reason"]) for r in retractions(read.outputs)] == [
            (OLD.key_id, "purpose-withdrawn")
        ]
        [write] = exposure.pending_writes()
        assert write.value is None
