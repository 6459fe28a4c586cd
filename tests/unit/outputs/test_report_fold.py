"""The report folds outcomes into counts as it goes; it must equal the report computed from
every outcome kept (days and first/last seen as instants, in UTC, whatever the offset)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock
from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED
from enforcer.core.models import DeadLetterReason, parse_rfc3339
from enforcer.core.policy.load import load_policy
from enforcer.core.step import FindingSummary, InputRecord, Outcome, OutcomeKind, Source
from enforcer.outputs.report.aggregate import ReportBuilder
from enforcer.outputs.report.model import ReplaySource
from enforcer.outputs.report.timing import day_of, instant_key

from ..conftest import NOW

# A few instants, so that outcomes share them (ties) and days, in many spellings.
INSTANTS = [
    datetime(2019, 10, 1, 0, 0, tzinfo=UTC),
    datetime(2019, 10, 1, 23, 59, 59, 999_000, tzinfo=UTC),
    datetime(2019, 10, 2, 0, 30, 0, 123_456, tzinfo=UTC),
    datetime(2019, 12, 31, 22, 0, tzinfo=UTC),
    datetime(2020, 2, 29, 12, 0, 0, 500_000, tzinfo=UTC),
]
OFFSETS = [0, 0, 60, -120, 330, -(23 * 60 + 59), 23 * 60 + 59, 14 * 60, -90]


@st.composite
def rfc3339_texts(draw: Callable[..., Any], instants: st.SearchStrategy[datetime]) -> str:
    """An RFC 3339 spelling the decision accepts of an instant: any offset, separator,
    case and number of fraction digits (beyond six, digits datetime does not keep)."""
    at = draw(instants)
    minutes = draw(st.sampled_from(OFFSETS) | st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    local = at.astimezone(UTC) + timedelta(minutes=minutes)
    digits = draw(st.sampled_from([0, 1, 3, 3, 3, 6, 9]))
    fraction = f"{local.microsecond:06d}"[:digits]
    if digits > 6:
        fraction += draw(st.text("0123456789", min_size=digits - 6, max_size=digits - 6))
    if minutes == 0:
        zone: str = draw(st.sampled_from(["Z", "Z", "z", "+00:00", "-00:00"]))
    else:
        sign = "+" if minutes > 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    separator: str = draw(st.sampled_from("TTTt "))
    return (
        f"{local:%Y-%m-%d}{separator}{local:%H:%M:%S}" + (f".{fraction}" if digits else "") + zone
    )


any_instant = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
times = rfc3339_texts(st.sampled_from(INSTANTS)) | rfc3339_texts(any_instant)
RULES = ["security-only-purpose", "missing-purpose", "purpose-not-allowed", PURPOSE_NOT_GRANTED]
findings_tuples = st.lists(
    st.builds(FindingSummary, st.sampled_from(RULES), st.sampled_from(["email", "phone", "x"])),
    max_size=3,
).map(tuple)


@st.composite
def outcomes(draw: Callable[..., Any], offset: int) -> Outcome:
    record = InputRecord(None, b"{}", (), Source("in.jsonl", 0, offset))
    if draw(st.integers(0, 9)) == 0:  # dead-lettered, or would be (audit)
        kind = draw(st.sampled_from([OutcomeKind.DEADLETTERED, OutcomeKind.PASSED]))
        reason = draw(st.sampled_from(list(DeadLetterReason)))
        return Outcome(kind, record, error_reason=reason, error_message="m")
    findings = draw(findings_tuples)
    kinds = [OutcomeKind.REDACTED, OutcomeKind.DROPPED, OutcomeKind.PASSED]
    kind = draw(st.sampled_from(kinds)) if findings else OutcomeKind.PASSED
    return Outcome(
        kind,
        record,
        findings=findings,
        subject_id=draw(st.sampled_from(["s1", "s2", "s3", "s4"])),
        occurred_at=draw(times),
    )


@st.composite
def outcome_lists(draw: Callable[..., Any]) -> list[Outcome]:
    return [draw(outcomes(offset)) for offset in range(draw(st.integers(0, 40)))]


def _window(seen: Sequence[Outcome]) -> tuple[str | None, str | None]:
    """First and last as instants; of equal instants, the one seen first."""
    if not seen:
        return None, None
    order = list(enumerate(seen))
    first = min(order, key=lambda o: (parse_rfc3339(o[1].occurred_at or ""), o[0]))
    last = max(order, key=lambda o: (parse_rfc3339(o[1].occurred_at or ""), -o[0]))
    return first[1].occurred_at, last[1].occurred_at


def _expected(kept: list[Outcome]) -> dict[str, Any]:
    """The report's counts from every outcome at once, datetimes parsed for each."""
    judged = [o for o in kept if o.error_reason is None]
    found = [o for o in judged if o.findings]
    rules = sorted({f.rule for o in found for f in o.findings})
    types = sorted({f.identifier_type for o in found for f in o.findings})

    def with_rule(rule: str) -> list[Outcome]:
        return [o for o in found if any(f.rule == rule for f in o.findings)]

    def with_type(kind: str) -> list[Outcome]:
        return [o for o in found if any(f.identifier_type == kind for f in o.findings)]

    def day(o: Outcome) -> str:
        return parse_rfc3339(o.occurred_at or "").astimezone(UTC).date().isoformat()

    days = sorted({day(o) for o in judged})
    return {
        "records": {
            "in": len(kept),
            **{kind.value: sum(1 for o in kept if o.kind is kind) for kind in OutcomeKind},
        },
        "violations": len(found),
        "violations_by_rule": {
            r: sum(1 for o in found for f in o.findings if f.rule == r) for r in rules
        },
        "identifiers_redacted_by_type": {
            t: sum(1 for o in found for f in o.findings if f.identifier_type == t) for t in types
        },
        "affected_subjects": len({o.subject_id for o in found}),
        "affected_subjects_by_rule": {r: len({o.subject_id for o in with_rule(r)}) for r in rules},
        "affected_subjects_by_type": {t: len({o.subject_id for o in with_type(t)}) for t in types},
        "deadletters_by_reason": dict(
            sorted(Counter(str(o.error_reason) for o in kept if o.error_reason).items())
        ),
        "window": _window(found),
        "rule_windows": {r: _window(with_rule(r)) for r in rules},
        "rule_types": {
            r: {
                t: len(
                    {
                        o.subject_id
                        for o in found
                        if FindingSummary(r, t) in o.findings  # the pair in one finding
                    }
                )
                for t in types
                if any(FindingSummary(r, t) in o.findings for o in found)
            }
            for r in rules
        },
        "type_windows": {t: _window(with_type(t)) for t in types},
        "by_day": [
            {
                "day": d,
                "records": sum(1 for o in judged if day(o) == d),
                "findings": sum(len(o.findings) for o in found if day(o) == d),
                "affected_subjects": len({o.subject_id for o in found if day(o) == d}),
            }
            for d in days
        ],
    }


@settings(max_examples=150, deadline=None)
@given(outcome_lists())
def test_folded_report_equals_the_report_of_every_outcome_kept(kept: list[Outcome]) -> None:
    """Counts, distinct subjects, UTC days and first/last seen (as instants, the first seen
    of equal ones, kept as spelled) are those of the outcomes taken all at once."""
    policy = load_policy(None)
    builder = ReportBuilder(policy, ReplaySource(kind="file", name="in.jsonl"), "key")
    for outcome in kept:
        builder.add(outcome)
    report = builder.build(FixedClock(NOW))
    data = report.model_dump(mode="json", by_alias=True)
    expected = _expected(kept)
    for field in (
        "records",
        "violations",
        "violations_by_rule",
        "identifiers_redacted_by_type",
        "affected_subjects",
        "affected_subjects_by_rule",
        "affected_subjects_by_type",
        "deadletters_by_reason",
        "by_day",
    ):
        assert data[field] == expected[field], field
    assert (report.first_seen, report.last_seen) == expected["window"]
    by_rule = {rule.rule: rule for rule in report.rules}
    for rule, window in expected["rule_windows"].items():
        assert (by_rule[rule].first_seen, by_rule[rule].last_seen) == window, rule
        assert by_rule[rule].affected_subjects_by_type == expected["rule_types"][rule], rule
    for summary in report.identifier_types:
        window = expected["type_windows"][summary.identifier_type]
        assert (summary.first_seen, summary.last_seen) == window


@settings(max_examples=500, deadline=None)
@given(times, times)
def test_instant_keys_sort_as_the_instants(a: str, b: str) -> None:
    """A key per time, compared as text, orders as the datetimes do (equal when equal)."""
    at_a, at_b = parse_rfc3339(a), parse_rfc3339(b)
    key_a, key_b = instant_key(a), instant_key(b)
    assert (key_a < key_b, key_a == key_b) == (at_a < at_b, at_a == at_b)
    assert key_a[:10] == day_of(a) == at_a.astimezone(UTC).date().isoformat()


def test_times_whose_utc_instant_leaves_the_calendar_are_held_at_its_ends() -> None:
    """Valid times an hour from the ends of years 1 to 9999 fall outside them in UTC,
    where Python has no datetime: the report's day and sort key stop at the ends
    instead of raising (which stopped a replay on one such record)."""
    late, early = "9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00"
    assert day_of(late) == "9999-12-31"
    assert day_of(early) == "0001-01-01"
    assert instant_key(late) == "9999-12-31T23:59:59.999999"
    assert instant_key(early) == "0001-01-01T00:00:00.000000"
    assert instant_key(early) < instant_key("2019-10-01T00:00:00Z") < instant_key(late)
