"""Fold outcomes into an impact report, one outcome at a time.

Memory grows with the number of distinct affected accounts and days, never with
the number of records.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

from enforcer.clock import Clock, rfc3339
from enforcer.models import parse_rfc3339, utc_day
from enforcer.policy.compiled import Policy
from enforcer.report.model import DaySummary, RecordCounts, ReplaySource, Report
from enforcer.step import Outcome, OutcomeKind


def _day_of(occurred_at: str) -> str:
    # Most timestamps are in UTC already; their date is the first ten characters.
    if occurred_at[-1] in "Zz" or occurred_at.endswith(("+00:00", "-00:00")):
        return occurred_at[:10]
    return utc_day(occurred_at)


class _Day:
    __slots__ = ("findings", "records", "subjects")

    def __init__(self) -> None:
        self.records = 0
        self.findings = 0
        self.subjects: set[str] = set()


class ReportBuilder:
    """Accumulates outcomes; :meth:`build` gives the report."""

    def __init__(self, policy: Policy, source: ReplaySource) -> None:
        self._policy = policy
        self._source = source
        self._kinds: Counter[str] = Counter()
        self._violations = 0
        self._by_rule: Counter[str] = Counter()
        self._by_type: Counter[str] = Counter()
        self._subjects: set[str] = set()
        self._subjects_by_rule: defaultdict[str, set[str]] = defaultdict(set)
        self._subjects_by_type: defaultdict[str, set[str]] = defaultdict(set)
        self._reasons: Counter[str] = Counter()
        self._days: defaultdict[str, _Day] = defaultdict(_Day)
        self._first: tuple[datetime, str] | None = None
        self._last: tuple[datetime, str] | None = None

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self._kinds[outcome.kind] += 1
        if outcome.kind is OutcomeKind.DEADLETTERED:
            self._reasons[str(outcome.error_reason)] += 1
            return
        occurred_at = outcome.occurred_at
        assert occurred_at is not None  # every judged record has a validated timestamp
        day = self._days[_day_of(occurred_at)]
        day.records += 1
        if not outcome.findings:
            return
        subject = outcome.subject_id
        assert subject is not None
        self._violations += 1
        day.findings += len(outcome.findings)
        day.subjects.add(subject)
        self._subjects.add(subject)
        for finding in outcome.findings:
            self._by_rule[finding.rule] += 1
            self._by_type[finding.identifier_type] += 1
            self._subjects_by_rule[finding.rule].add(subject)
            self._subjects_by_type[finding.identifier_type].add(subject)
        when = parse_rfc3339(occurred_at)
        if self._first is None or when < self._first[0]:
            self._first = (when, occurred_at)
        if self._last is None or when > self._last[0]:
            self._last = (when, occurred_at)

    def build(self, clock: Clock) -> Report:
        """The report as of now."""
        counts = RecordCounts(
            in_=sum(self._kinds.values()),
            passed=self._kinds[OutcomeKind.PASSED],
            redacted=self._kinds[OutcomeKind.REDACTED],
            dropped=self._kinds[OutcomeKind.DROPPED],
            deadlettered=self._kinds[OutcomeKind.DEADLETTERED],
        )
        return Report(
            policy_version=self._policy.version,
            policy_origin=self._policy.origin,
            mode=self._policy.mode,
            destination=self._policy.destination,
            source=self._source,
            generated_at=rfc3339(clock.now()),
            records=counts,
            violations=self._violations,
            violations_by_rule=_sorted(self._by_rule),
            identifiers_redacted_by_type=_sorted(self._by_type),
            affected_subjects=len(self._subjects),
            affected_subjects_by_rule=_sorted_sets(self._subjects_by_rule),
            affected_subjects_by_type=_sorted_sets(self._subjects_by_type),
            deadletters_by_reason=_sorted(self._reasons),
            first_seen=self._first[1] if self._first else None,
            last_seen=self._last[1] if self._last else None,
            by_day=[
                DaySummary(
                    day=name,
                    records=day.records,
                    findings=day.findings,
                    affected_subjects=len(day.subjects),
                )
                for name, day in sorted(self._days.items())
            ],
        )


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items()))


def _sorted_sets(groups: defaultdict[str, set[str]]) -> dict[str, int]:
    return {name: len(members) for name, members in sorted(groups.items())}
