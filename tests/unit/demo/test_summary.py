"""The summary lines every variant of the demo prints, from records read back."""

from __future__ import annotations

from typing import Any

from enforcer.demo.summary import ReadBack, outcome_lines, rule_meanings
from enforcer.testing.consume import ReadRecord


def _sink(action: str) -> ReadRecord:
    return ReadRecord(
        "audience.building", 0, 0, None, b"{}", (("enforcer.action", action.encode()),)
    )


def _dead(reason: str) -> ReadRecord:
    return ReadRecord(
        "enforcer.deadletter", 0, 0, None, b"x", (("enforcer.error.reason", reason.encode()),)
    )


def _violation(action: str, subject: str, *findings: tuple[str, str]) -> dict[str, Any]:
    return {
        "action": action,
        "subject_id": subject,
        "findings": [{"rule": rule, "identifier_type": kind} for rule, kind in findings],
    }


READ = ReadBack(
    [_sink("passed"), _sink("passed"), _sink("redacted")],
    [
        _violation("redacted", "a", ("security-only-purpose", "phone")),
        _violation(
            "dropped", "a", ("security-only-purpose", "phone"), ("missing-purpose", "email")
        ),
    ],
    [_dead("undecodable"), _dead("unknown-schema"), _dead("undecodable")],
)


def test_every_outcome_is_counted_and_the_total_checked() -> None:
    lines = outcome_lines(READ, 7, {"missing-purpose": "No declared purpose."})
    text = "\n".join(lines)
    assert lines[1:5] == [
        "  passed:               2",
        "  redacted:             1",
        "  dropped:              1",
        "  dead-lettered:        3   {'undecodable': 2, 'unknown-schema': 1}",
    ]
    assert "accounted for:        7   (every record has exactly one outcome)" in text
    assert "violations:             2   affecting 1 accounts" in text
    assert "  rule missing-purpose: 1 identifiers  (No declared purpose.)" in lines
    assert "  rule security-only-purpose: 2 identifiers" in lines  # no meaning given
    assert "  type phone: 2 identifiers" in lines


def test_a_record_without_an_outcome_is_a_mismatch() -> None:
    assert "(MISMATCH)" in "\n".join(outcome_lines(READ, 8, {}))


def test_rule_meanings_come_from_the_policy_the_worker_runs() -> None:
    meanings = rule_meanings(None)
    assert {"security-only-purpose", "missing-purpose", "purpose-not-allowed"} <= set(meanings)
    assert all(meanings.values())
