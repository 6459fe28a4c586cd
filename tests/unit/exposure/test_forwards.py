"""What the decision hands exposure (enforcer/exposure/forwards.py): for any record,
the forwards of its outcome are exactly the identifiers its forwarded value holds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import FINGERPRINT_PREFIX
from enforcer.core.purposes import normalize_tag
from enforcer.core.step import InputRecord, OutcomeKind, Source
from enforcer.exposure.forwards import ExposureNotTrackedError, forwards
from enforcer.exposure.model import Forward

from ..conftest import event, ident, make_step, record
from ..core.test_one_pass import EXPOSING, FP, LEDGER, SETTINGS, _encode, simple_event
from ..core.test_properties import near_event, valid_event

SINK = "audience.identity"


def _forwards_of(name: str, value: bytes) -> tuple[OutcomeKind, bool, list[Forward]]:
    step = EXPOSING[name]
    outcome = step(InputRecord(b"k", value, (), Source("identity.events", 1, 3)))
    found = forwards(outcome, SINK, step.policy.version, step.key_id)
    return outcome.kind, outcome.would_dead_letter, found


def _expected(
    name: str, subject_id: str, item: dict[str, Any]
) -> tuple[str, str, tuple[str, ...], bool]:
    """An identifier of the forwarded value as exposure should record it."""
    kind = item["type"].strip().lower()
    mac = FP.mac(kind, item["value"])
    claimed = tuple(normalize_tag(tag) or "?" for tag in item.get("purposes") or ())
    ledger = SETTINGS[name][1]
    grants = None if ledger is None else LEDGER.subject(1, subject_id)
    granted = None if grants is None else grants(kind, mac)
    if granted is not None:
        return kind, FINGERPRINT_PREFIX + mac.hex(), granted, True
    if "authoritative" in name:
        return kind, FINGERPRINT_PREFIX + mac.hex(), (), False
    return kind, FINGERPRINT_PREFIX + mac.hex(), claimed, False


@settings(max_examples=500)
@given(
    st.sampled_from(sorted(EXPOSING)),
    simple_event | valid_event | near_event,
    st.sampled_from(["stdlib", "escaped", "spaced"]),
)
def test_forwards_are_the_identifiers_of_the_forwarded_value(
    name: str, data: dict[str, Any], how: str
) -> None:
    """Redacted identifiers are not in the value and not forwarded; a dropped or
    dead-lettered record forwards none, nor does one audit mode forwards unread."""
    kind, unread, found = _forwards_of(name, _encode(data, how))
    step = EXPOSING[name]
    assert all(
        (f.sink_topic, f.key_id, f.policy_version) == (SINK, step.key_id, step.policy.version)
        for f in found
    )
    if kind in {OutcomeKind.DROPPED, OutcomeKind.DEADLETTERED} or unread:
        assert found == []
        return
    outcome = step(InputRecord(b"k", _encode(data, how), (), Source("identity.events", 1, 3)))
    assert outcome.forward_value is not None
    forwarded = json.loads(outcome.forward_value)  # exact: long integers too
    expected = [_expected(name, forwarded["subject_id"], item) for item in forwarded["identifiers"]]
    assert [(f.identifier_type, f.fingerprint, f.purposes, f.by_ledger) for f in found] == expected


def test_a_redacted_record_forwards_what_it_kept() -> None:
    value = json.dumps(
        event(
            ident("email", "ann@example.com", ["marketing.advertising"]),
            ident("Phone", "+14155550100", ["security.mfa"]),
            ident("device_id", "d-1", [" Marketing.Advertising", "analytics"]),
        )
    ).encode()
    kind, _, found = _forwards_of("default", value)
    assert kind is OutcomeKind.REDACTED
    assert [(f.identifier_type, f.purposes) for f in found] == [
        ("email", ("marketing.advertising",)),
        ("device_id", ("marketing.advertising", "analytics")),
    ]
    assert found[0].fingerprint == FP("email", "ann@example.com")
    assert not any(f.by_ledger for f in found)


def test_audit_mode_forwards_every_identifier_it_read() -> None:
    """Findings too: the record flows unchanged."""
    value = json.dumps(event(ident("phone", "+14155550100", ["security.mfa"]))).encode()
    kind, unread, found = _forwards_of("audit", value)
    assert (kind, unread) == (OutcomeKind.PASSED, False)
    assert [(f.identifier_type, f.purposes) for f in found] == [("phone", ("security.mfa",))]
    kind, unread, found = _forwards_of("audit", b'{"not": "an event"}')
    assert (kind, unread, found) == (OutcomeKind.PASSED, True, [])


def test_the_ledgers_purposes_are_the_ones_judged_by() -> None:
    value = json.dumps(event(ident("email", "\u2602a", ["analytics"]))).encode()
    _, _, found = _forwards_of("fallback ledger", value)
    assert [(f.purposes, f.by_ledger) for f in found] == [(("marketing.advertising",), True)]


def test_a_step_without_exposure_is_refused_not_silently_empty() -> None:
    outcome = make_step()(record(event(ident("email", "a@b.c", ["marketing.advertising"]))))
    assert outcome.forwarded and outcome.forwarded_identifiers is None
    with pytest.raises(ExposureNotTrackedError):
        forwards(outcome, SINK, "v1", "0" * 16)
    dropped = make_step()(record(event(ident("email", "a@b.c", ["security.mfa"]))))
    assert dropped.kind is OutcomeKind.DROPPED
    assert forwards(dropped, SINK, "v1", "0" * 16) == []
