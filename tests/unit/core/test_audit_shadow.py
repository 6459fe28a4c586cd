"""Audit is a shadow mode (docs/contract.md: default policy): nothing it decides changes what flows.

Every record, valid or not, is forwarded byte-identical; would-be dead letters are
reported on the violations topic; the guard counts would-be trips and never stops.
Also the W3C ``traceparent`` carried from an input record onto its violation.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from enforcer.core.models import AuditDeadLetterEvent, Mode, ViolationEvent
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import load_policy
from enforcer.core.step import HEADER_ACTION, InputRecord, OutcomeKind, Source, Step, traceparent
from enforcer.live.guard import DeadLetterGuard, DeadLetterRateExceededError
from enforcer.outputs.records import OutputTopics, output_records

from ..conftest import event, ident, make_step, record

TOPICS = OutputTopics("sink", "violations", "deadletter")
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TAXONOMY = """
mode: {mode}
taxonomy: {{include: [fides], purposes: [security], unknown: reject}}
rules: [{{name: missing-purpose, when: no-purpose}}]
security_override: {{reason: a test of the taxonomy alone}}
"""

MALFORMED: list[bytes | None] = [
    b"\xff not json",
    b"[1, 2]",
    orjson.dumps(event(ident("phone", ""))),  # schema: empty value
    None,  # neither key nor value
]


def _audit() -> Step:
    return make_step(load_policy(None).with_mode(Mode.AUDIT))


@pytest.mark.parametrize("value", MALFORMED)
def test_audit_forwards_what_enforce_would_dead_letter(value: bytes | None) -> None:
    """Same key and value bytes to the sink, a report on the violations topic, and
    nothing on the dead-letter topic; enforce mode dead-letters the same record."""
    rec = InputRecord(b"acct-9", value, (("h", b"v"),), Source("identity.events", 1, 7))
    enforced = make_step()(rec)
    assert enforced.kind is OutcomeKind.DEADLETTERED
    out = _audit()(rec)
    assert (out.kind, out.would_dead_letter) == (OutcomeKind.PASSED, True)
    assert out.error_reason is enforced.error_reason
    written = list(output_records(out, TOPICS))
    assert [w.topic for w in written] == ["sink", "violations"]
    sink, report = written
    assert (sink.key, sink.value) == (b"acct-9", value)
    assert dict(sink.headers)[HEADER_ACTION] == b"passed" and sink.headers[0] == ("h", b"v")
    assert report.key == b"acct-9"  # no subject id could be read: keyed like the input
    notice = AuditDeadLetterEvent.model_validate_json(report.value or b"")
    assert (notice.mode, notice.action, notice.findings) == (Mode.AUDIT, "deadlettered", [])
    assert notice.deadletter.reason is enforced.error_reason
    assert notice.deadletter.message == enforced.error_message
    assert (notice.source.partition, notice.source.offset) == (1, 7)
    with pytest.raises(ValueError, match="event_id"):
        ViolationEvent.model_validate_json(report.value or b"")


def test_audit_forwards_tags_outside_the_taxonomy(policy_from: Callable[[str], Policy]) -> None:
    """A policy rejecting unknown tags dead-letters in enforce mode, forwards in audit."""
    rec = record(event(ident("email", "a@x.io", ["not.in.any.taxonomy"])))
    enforced = make_step(policy_from(TAXONOMY.format(mode="enforce")))(rec)
    assert enforced.kind is OutcomeKind.DEADLETTERED
    out = make_step(policy_from(TAXONOMY.format(mode="audit")))(rec)
    assert (out.kind, out.forward_value) == (OutcomeKind.PASSED, rec.value)
    assert out.violation is not None and out.violation["deadletter"]["reason"] == "schema"
    assert b"a@x.io" not in orjson.dumps(out.violation)


def test_audit_reports_never_carry_the_value() -> None:
    """The message names the place and the problem, never the offending value."""
    value = orjson.dumps(event(ident("phone", "+1 555 0100", ["security.mfa"]), occurred_at="x"))
    out = _audit()(record(value))
    assert out.violation is not None
    assert out.violation["deadletter"]["reason"] == "schema"
    assert b"555" not in orjson.dumps(out.violation)


def test_enforce_mode_outputs_are_unchanged() -> None:
    """Enforce mode: a dead letter goes to the dead-letter topic only."""
    out = make_step()(record(b"[1]"))
    assert [w.topic for w in output_records(out, TOPICS)] == ["deadletter"]


def test_the_guard_counts_would_be_trips_in_audit_and_stops_in_enforce() -> None:
    """Over the limit, an enforcing guard raises; an auditing one counts each rise
    over the limit once and lets every batch through."""
    auditing = DeadLetterGuard(0.5, 4, stops=False)
    auditing.check([True, True, True, False])  # 3 of 4 > 50%: a would-be trip
    auditing.check([True, True])  # still over: the same trip
    assert auditing.trips == 1
    auditing.check([False, False, False, False])  # back under
    auditing.check([True, True, True])  # over again
    assert auditing.trips == 2
    enforcing = DeadLetterGuard(0.5, 4)
    enforcing.check([True, False])  # the window is not full yet
    with pytest.raises(DeadLetterRateExceededError, match="ENFORCER_DEADLETTER_MAX_RATIO"):
        enforcing.check([True, True])
    assert enforcing.trips == 1


def test_a_full_window_at_the_limit_does_not_trip() -> None:
    """Exactly the limit is allowed; one more dead letter trips."""
    guard = DeadLetterGuard(0.5, 4)
    guard.check([False, False, True, True])
    with pytest.raises(DeadLetterRateExceededError):
        guard.check([True])


@pytest.mark.parametrize("mode", [Mode.ENFORCE, Mode.AUDIT])
def test_traceparent_is_carried_onto_the_violation(mode: Mode) -> None:
    """Field ``traceparent`` in the event and header ``traceparent`` on its record."""
    step = make_step(load_policy(None).with_mode(mode))
    rec = record(
        event(ident("phone", "1", ["security.mfa"])), headers=(("traceparent", TRACE.encode()),)
    )
    out = step(rec)
    [violation] = [w for w in output_records(out, TOPICS) if w.topic == "violations"]
    assert violation.headers == (("traceparent", TRACE.encode()),)
    assert ViolationEvent.model_validate_json(violation.value or b"").traceparent == TRACE
    would_be = step(record(b"{", headers=(("traceparent", TRACE.encode()),)))
    if mode is Mode.AUDIT:
        assert would_be.violation is not None and would_be.violation["traceparent"] == TRACE
        assert would_be.violation_headers == (("traceparent", TRACE.encode()),)


def test_no_traceparent_no_field() -> None:
    """Without the header, the violation has neither the field nor the header."""
    out = make_step()(record(event(ident("phone", "1", ["security.mfa"]))))
    assert out.violation is not None and "traceparent" not in out.violation
    assert out.violation_headers == ()


@pytest.mark.parametrize(
    ("value", "carried"),
    [
        (TRACE.encode(), TRACE),
        (TRACE.upper().encode(), None),  # W3C: lower-case hex only
        (b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", None),  # all-zero trace id
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-" + b"0" * 16 + b"-01", None),
        (b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        (TRACE.encode() + b"-extra", None),  # version 00 has exactly four fields
        (b"01" + TRACE[2:].encode() + b"-future", "01" + TRACE[2:]),
        (b"+1 555 0100", None),  # whatever else a header holds is never copied
        (None, None),
    ],
)
def test_traceparent_validation(value: bytes | None, carried: str | None) -> None:
    """Only a valid W3C traceparent is carried."""
    assert traceparent((("other", b"x"), ("traceparent", value))) == carried
