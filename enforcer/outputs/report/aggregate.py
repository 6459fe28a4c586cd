"""Fold outcomes into an impact report, one outcome at a time.

Memory grows with the number of distinct affected accounts and days, never with
the number of records.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from enforcer.core.clock import Clock, rfc3339
from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED, PURPOSE_NOT_GRANTED_MEANING
from enforcer.core.models import Mode, parse_rfc3339
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.evaluate import Decision
from enforcer.core.step import Outcome, OutcomeKind
from enforcer.outputs.report.ledger import LedgerTally
from enforcer.outputs.report.model import (
    DaySummary,
    LedgerSummary,
    RecordCounts,
    ReplaySource,
    Report,
    RuleSummary,
    TypeSummary,
)
from enforcer.outputs.report.timing import Window, day_of

# Rules a finding can name that are no rule of the policy file.
_UNLISTED = {PURPOSE_NOT_GRANTED: PURPOSE_NOT_GRANTED_MEANING}


class _Day:
    __slots__ = ("findings", "records", "subjects")

    def __init__(self) -> None:
        self.records = 0
        self.findings = 0
        self.subjects: set[str] = set()


class ReportBuilder:
    """Accumulates outcomes; :meth:`build` gives the report."""

    def __init__(
        self,
        policy: Policy,
        source: ReplaySource,
        key_id: str,
        ledger: LedgerSummary | None = None,
    ) -> None:
        """``ledger``: the purpose ledger the records are judged against, if any (its
        source, setting, size and record counts; the builder adds what it changed)."""
        self._policy = policy
        self._ledger = LedgerTally(ledger) if ledger is not None else None
        self._source = source
        self._key_id = key_id
        self._kinds: Counter[str] = Counter()
        self._violations = 0
        self._by_rule: Counter[str] = Counter()
        self._by_type: Counter[str] = Counter()
        self._subjects: set[str] = set()
        self._subjects_by_rule: defaultdict[str, set[str]] = defaultdict(set)
        self._subjects_by_type: defaultdict[str, set[str]] = defaultdict(set)
        self._reasons: Counter[str] = Counter()
        self._subjects_by_rule_type: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._days: defaultdict[str, _Day] = defaultdict(_Day)
        self._window = Window()
        self._window_by_rule: defaultdict[str, Window] = defaultdict(Window)
        self._window_by_type: defaultdict[str, Window] = defaultdict(Window)

    def add(self, outcome: Outcome, decision: Decision | None = None) -> None:
        """Count one outcome; ``decision`` (its per-identifier judgements) is needed
        only for the ledger's counts of identifiers it knew."""
        self._kinds[outcome.kind] += 1
        if self._ledger is not None:
            self._ledger.add(outcome, decision)
        if outcome.error_reason is not None:  # dead-lettered, or would be (audit)
            self._reasons[str(outcome.error_reason)] += 1
            return
        occurred_at = outcome.occurred_at
        assert occurred_at is not None  # every judged record has a validated timestamp
        day = self._days[day_of(occurred_at)]
        day.records += 1
        if not outcome.findings:
            return
        subject = outcome.subject_id
        assert subject is not None
        self._violations += 1
        day.findings += len(outcome.findings)
        day.subjects.add(subject)
        self._subjects.add(subject)
        when = parse_rfc3339(occurred_at)
        self._window.add(when, occurred_at)
        for rule, kind in outcome.findings:
            self._by_rule[rule] += 1
            self._by_type[kind] += 1
            self._subjects_by_rule[rule].add(subject)
            self._subjects_by_type[kind].add(subject)
            self._subjects_by_rule_type[rule, kind].add(subject)
            self._window_by_rule[rule].add(when, occurred_at)
            self._window_by_type[kind].add(when, occurred_at)

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
            key_id=self._key_id,
            source=self._source,
            generated_at=rfc3339(clock.now()),
            summary=_summary(counts, self._violations, self._policy.mode),
            records=counts,
            violations=self._violations,
            violations_by_rule=_sorted(self._by_rule),
            identifiers_redacted_by_type=_sorted(self._by_type),
            affected_subjects=len(self._subjects),
            affected_subjects_by_rule=_sorted_sets(self._subjects_by_rule),
            affected_subjects_by_type=_sorted_sets(self._subjects_by_type),
            deadletters_by_reason=_sorted(self._reasons),
            ledger=self._ledger.build() if self._ledger is not None else None,
            first_seen=self._window.first_text,
            last_seen=self._window.last_text,
            rules=self._rules(),
            identifier_types=[
                TypeSummary(
                    identifier_type=kind,
                    findings=n,
                    affected_subjects=len(self._subjects_by_type[kind]),
                    first_seen=self._window_by_type[kind].first_text,
                    last_seen=self._window_by_type[kind].last_text,
                )
                for kind, n in sorted(self._by_type.items())
            ],
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

    def _rules(self) -> list[RuleSummary]:
        names = [rule.name for rule in self._policy.rules]
        # A finding always names a policy rule; any other name is still reported.
        names += sorted(set(self._by_rule) - set(names))
        described = {rule.name: rule for rule in self._policy.rules}
        summaries = []
        for name in names:
            rule = described.get(name)
            window = self._window_by_rule.get(name, Window())
            by_type = {
                kind: len(subjects)
                for (rule_name, kind), subjects in sorted(self._subjects_by_rule_type.items())
                if rule_name == name
            }
            summaries.append(
                RuleSummary(
                    rule=name,
                    description=rule.description if rule else _UNLISTED.get(name, ""),
                    action=str(rule.action) if rule else "",
                    findings=self._by_rule.get(name, 0),
                    affected_subjects=len(self._subjects_by_rule.get(name, ())),
                    affected_subjects_by_type=by_type,
                    first_seen=window.first_text,
                    last_seen=window.last_text,
                )
            )
        return summaries


def _summary(counts: RecordCounts, violations: int, mode: Mode) -> str:
    """What would have happened, in the conditional: a replay changes nothing."""
    if mode is Mode.AUDIT:
        done = (
            f"all {counts.passed:,} valid records would have been forwarded unchanged (audit "
            f"mode); enforce mode would have redacted or dropped {violations:,} of them"
        )
    else:
        done = (
            f"{counts.passed:,} would have passed, {counts.redacted:,} would have been "
            f"redacted and {counts.dropped:,} dropped"
        )
    return (
        f"Replay of {counts.in_:,} records under this policy: {done}; "
        f"{counts.deadlettered:,} would have been dead-lettered. Nothing was written to the "
        "live topics."
    )


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items()))


def _sorted_sets(groups: defaultdict[str, set[str]]) -> dict[str, int]:
    return {name: len(members) for name, members in sorted(groups.items())}
