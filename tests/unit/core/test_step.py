"""The per-record step (docs/contract.md: forwarded record, violation event, dead letter): one
record in, exactly one outcome out."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterReason, Mode, ViolationEvent
from enforcer.core.policy.load import load_policy
from enforcer.core.step import (
    _VIOLATION_NAMESPACE,
    HEADER_ACTION,
    HEADER_POLICY,
    InputRecord,
    OutcomeKind,
    Source,
    Step,
    violation_id,
)

from ..conftest import KEY, event, ident, make_step, record


def test_nothing_to_redact_forwards_the_original_bytes(step: Step) -> None:
    """Same key, same value bytes (spacing and all), input headers kept plus ours."""
    raw = (
        b'{ "event_id":"e", "subject_id":"s", "occurred_at":"2019-10-08T12:00:00Z",\n'
        b' "identifiers":[{"type":"email","value":"a@b.c","purposes":["marketing.advertising"]}] }'
    )
    out = step(InputRecord(b"k", raw, (("trace", b"1"),), Source("t", 3, 9)))
    assert out.kind is OutcomeKind.PASSED
    assert out.forward_value is raw
    assert out.forward_headers == (
        ("trace", b"1"),
        (HEADER_ACTION, b"passed"),
        (HEADER_POLICY, step.policy.version.encode()),
    )
    assert out.violation is None


def test_redaction_removes_only_the_offending_entries(step: Step) -> None:
    """Every other field keeps its value, unicode included; order of the rest kept."""
    data = event(
        ident("email", "zoë@example.com", ["marketing.advertising"], verified=True),
        ident("phone", "+1 (415) 555-0100", ["security.mfa"]),
        ident("device_id", "d-1", ["analytics", "marketing.advertising"], meta={"ü": [1.5, None]}),
        context={"city": "Zürich", "big": 12345678901234567890123},
        event_type="account.updated",
    )
    out = step(record(_dumps(data)))  # the standard library: orjson refuses the big integer
    assert out.kind is OutcomeKind.REDACTED
    assert out.forward_value is not None
    forwarded = _loads(out.forward_value)
    expected = dict(data)
    expected["identifiers"] = [data["identifiers"][0], data["identifiers"][2]]
    assert forwarded == expected
    assert "Zürich".encode() in out.forward_value  # kept as UTF-8, not escaped
    assert dict(out.forward_headers or ())[HEADER_ACTION] == b"redacted"


@pytest.mark.parametrize(
    "number", ["0.30000000000000000001", "12345678901234567.5", "1e-400", "1.5", "2" * 25]
)
def test_a_redacted_event_keeps_every_number_at_its_exact_value(step: Step, number: str) -> None:
    """Any other field is forwarded as it is (docs/contract.md): read as a double, a
    number past 17 digits was written back as another value."""
    raw = (
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
        b'"amount":' + number.encode() + b',"identifiers":['
        b'{"type":"email","value":"a@b.c","purposes":["marketing.advertising"],"score":'
        + number.encode()
        + b'},{"type":"phone","value":"+14155550100","purposes":["security.mfa"]}]}'
    )
    for out in (step(record(raw)), step.explain(record(raw))[0]):
        assert out.kind is OutcomeKind.REDACTED
        assert out.forward_value is not None
        forwarded = json.loads(out.forward_value, parse_float=Decimal, parse_int=Decimal)
        assert forwarded["amount"] == Decimal(number)
        assert forwarded["identifiers"][0]["score"] == Decimal(number)
        assert len(forwarded["identifiers"]) == 1
        assert b"+14155550100" not in out.forward_value


def _dumps(data: dict[str, Any]) -> bytes:
    import json

    return json.dumps(data, ensure_ascii=False).encode()


def _loads(value: bytes) -> Any:
    import json

    return json.loads(value)


def test_violation_event_matches_the_spec(step: Step) -> None:
    """A violation event: fields, action, findings with fingerprints and no raw values."""
    out = step(
        record(
            event(
                ident("email", "a@b.c", ["marketing.advertising"]),
                ident("Phone", "+1 (415) 555-0100", ["Security.MFA"]),
            ),
            offset=42,
        )
    )
    assert out.violation is not None
    violation = ViolationEvent.model_validate(out.violation)
    assert violation.action == "redacted"
    assert violation.mode is Mode.ENFORCE
    assert violation.policy_version == step.policy.version
    assert violation.key_id == Fingerprinter(KEY).key_id
    assert violation.source.model_dump() == {
        "topic": "identity.events",
        "partition": 0,
        "offset": 42,
    }
    assert violation.detected_at == "2026-11-30T12:00:00.000Z"
    assert (violation.event_id, violation.subject_id) == ("evt-1", "acct-1")
    [finding] = violation.findings
    assert finding.model_dump() == {
        "rule": "security-only-purpose",
        "identifier_index": 1,
        "identifier_type": "phone",
        "purposes": ["security.mfa"],
        "fingerprint": Fingerprinter(KEY)("phone", "+14155550100"),
    }
    assert b"555" not in orjson.dumps(out.violation)


def test_violation_id_depends_on_source_coordinates_only() -> None:
    """Processing the same record again, even under another policy, gives the same id."""
    rec = record(event(ident("phone", "1", ["security"])), offset=7)
    first = make_step()(rec).violation
    audit = make_step(load_policy(None).with_mode(Mode.AUDIT))(rec).violation
    assert first is not None and audit is not None
    assert first["violation_id"] == audit["violation_id"]
    other = make_step()(record(event(ident("phone", "1", ["security"])), offset=8)).violation
    assert other is not None
    assert first["violation_id"] != other["violation_id"]
    source = Source("identity.events", 0, 7)
    assert violation_id(source) == str(
        uuid.uuid5(_VIOLATION_NAMESPACE, "identity.events\x000\x007")
    )


def test_dropped_records_emit_only_a_violation(step: Step) -> None:
    """Nothing left after redaction: no forward, a violation with action dropped."""
    out = step(record(event(ident("phone", "1", ["security.mfa"]))))
    assert out.kind is OutcomeKind.DROPPED
    assert out.forward_value is None
    assert out.violation is not None and out.violation["action"] == "dropped"


def test_audit_mode_forwards_unchanged_and_reports() -> None:
    """Audit: every valid record forwarded as is, violations still emitted."""
    step = make_step(load_policy(None).with_mode(Mode.AUDIT))
    rec = record(event(ident("phone", "1", ["security.mfa"])))
    out = step(rec)
    assert out.kind is OutcomeKind.PASSED
    assert out.forward_value == rec.value
    assert out.violation is not None
    assert (out.violation["mode"], out.violation["action"]) == ("audit", "dropped")


def test_dead_letters_keep_bytes_and_carry_reason_headers(step: Step) -> None:
    """A dead letter: original key, value and headers plus the error and source headers."""
    rec = InputRecord(b"key", b"\xff not json", (("h", b"v"),), Source("identity.events", 2, 5))
    out = step(rec)
    assert out.kind is OutcomeKind.DEADLETTERED
    assert out.forward_value is None and out.violation is None
    headers = out.dead_letter_headers()
    assert headers[0] == ("h", b"v")
    named = dict(headers)
    assert named["enforcer.error.reason"] == b"invalid-json"
    assert named["enforcer.source.topic"] == b"identity.events"
    assert named["enforcer.source.partition"] == b"2"
    assert named["enforcer.source.offset"] == b"5"
    assert (named["enforcer.error.message"] or b"").startswith(b"not valid UTF-8 JSON")


def test_invalid_purpose_tag_is_a_schema_dead_letter(step: Step) -> None:
    """A tag that is not a dotted path dead-letters the record, naming where."""
    out = step(
        record(
            event(
                ident("email", "secret@x.y", ["marketing.advertising"]),
                ident("phone", "1", ["ok", "not a tag"]),
            )
        )
    )
    assert out.error_reason is DeadLetterReason.SCHEMA
    assert out.error_message == (
        "identifiers[1].purposes[1]: not a purpose tag (dot-separated segments of [a-z0-9_-])"
    )


def test_an_internal_error_dead_letters_the_record() -> None:
    """Fail closed: an unexpected exception never forwards the record, on either path
    (an error in the one pass hands the record to the reference path, which fails here
    too). The error comes from the clock, which a redacted record's violation reads."""

    class BrokenClock:
        def now(self) -> datetime:
            raise RuntimeError("secret@example.com")

    step = Step(load_policy(None), Fingerprinter(KEY), BrokenClock())
    out = step(
        record(
            event(
                ident("email", "a@example.com", ["marketing.advertising"]),
                ident("phone", "+14155550100", ["security.mfa"]),
            )
        )
    )
    assert out.kind is OutcomeKind.DEADLETTERED
    assert out.error_reason is DeadLetterReason.INTERNAL
    assert out.error_message == "internal error: RuntimeError"


def test_spoofed_enforcer_headers_are_replaced(step: Step) -> None:
    """An input header claiming to be the enforcer's is not passed on."""
    rec = record(
        event(), headers=((HEADER_ACTION, b"passed"), (HEADER_POLICY, b"fake"), ("x", b"1"))
    )
    out = step(rec)
    assert out.forward_headers == (
        ("x", b"1"),
        (HEADER_ACTION, b"passed"),
        (HEADER_POLICY, step.policy.version.encode()),
    )


FORGED = (
    ("ENFORCER.ACTION", b"passed"),
    ("enforcer.action ", b"passed"),
    ("enforcer.error.reason", b"fake-reason"),
    ("enforcer.error.message", b"+14155550142"),
    ("Enforcer.Source.Offset", b"999"),
    ("x-trace", b"1"),
)


def test_headers_in_the_enforcers_namespace_are_never_passed_on(step: Step) -> None:
    """Any input header named like the enforcer's own (any letter case, white space
    around) is dropped from what the enforcer writes, forwarded records and dead letters
    alike: a consumer reading the first header of a name, or matching names without
    case, could otherwise take a forged one for the enforcer's (and a forged message
    could carry a phone number). Other headers are kept, in order."""
    forwarded = step(record(event(), headers=FORGED))
    assert forwarded.forward_headers == (
        ("x-trace", b"1"),
        (HEADER_ACTION, b"passed"),
        (HEADER_POLICY, step.policy.version.encode()),
    )
    dead = step(record(b"not json", headers=FORGED))
    assert dead.kind is OutcomeKind.DEADLETTERED
    headers = dead.dead_letter_headers()
    assert headers[0] == ("x-trace", b"1")
    assert [name for name, _ in headers[1:]] == [
        "enforcer.error.reason",
        "enforcer.error.message",
        "enforcer.source.topic",
        "enforcer.source.partition",
        "enforcer.source.offset",
    ]
    assert b"+14155550142" not in b"".join(value or b"" for _, value in headers)


def test_a_record_without_value_is_dead_lettered(step: Step) -> None:
    """A tombstone (null value) cannot be judged."""
    out = step(InputRecord(b"k", None, (), Source("t", 0, 0)))
    assert out.error_reason is DeadLetterReason.INVALID_JSON


def test_an_escaped_lone_surrogate_is_invalid_json(step: Step) -> None:
    """A lone surrogate escape has no UTF-8 form: the record is not valid JSON to forward."""
    raw = (
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z","odd":"\\ud800",'
        b'"identifiers":[]}'
    )
    out = step(record(raw))
    assert out.error_reason is DeadLetterReason.INVALID_JSON
