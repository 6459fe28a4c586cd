"""Fold outcomes into an impact report, one outcome at a time.

Memory grows with the number of distinct affected accounts, days and combinations of
findings, never with the number of records.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from enforcer.core.clock import Clock, rfc3339
from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED, PURPOSE_NOT_GRANTED_MEANING
from enforcer.core.models import DeadLetterReason, Mode
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.evaluate import Decision
from enforcer.core.step import FindingSummary, Outcome, OutcomeKind
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
from enforcer.outputs.report.timing import Window, day_of, instant_key

# Rules a finding can name that are no rule of the policy file.
_UNLISTED = {PURPOSE_NOT_GRANTED: PURPOSE_NOT_GRANTED_MEANING}


class _Cell:
    """The judged records of one outcome kind, UTC day and tuple of findings: how many,
    and, when there are findings, whose (distinct subjects) and from when to when."""

    __slots__ = ("records", "subjects", "window")

    def __init__(self) -> None:
        self.records = 0
        self.subjects: set[str] = set()
        self.window = Window()


_CellKey = tuple[OutcomeKind, str, tuple[FindingSummary, ...]]


class ReportBuilder:
    """Accumulates outcomes; :meth:`build` gives the report.

    Each outcome is counted in one cell (its kind, UTC day and findings; a few hundred
    at most for a week of the benchmark mix) and adds its subject to that cell's set;
    the report's totals, per rule, per type and per day, are summed from the cells once,
    in :meth:`build`. Nothing of an outcome is kept but its subject, so a replay of
    millions of records costs one dictionary lookup each, and the garbage collector has
    no per-record objects to scan again and again."""

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
        self._cells: dict[_CellKey, _Cell] = {}
        self._unjudged: Counter[tuple[OutcomeKind, DeadLetterReason]] = Counter()
        self._seen = 0

    def add(self, outcome: Outcome, decision: Decision | None = None) -> None:
        """Count one outcome; ``decision`` (its per-identifier judgements) is needed
        only for the ledger's counts of identifiers it knew."""
        if self._ledger is not None:
            self._ledger.add(outcome, decision)
        reason = outcome.error_reason
        if reason is not None:  # dead-lettered, or would be (audit)
            self._unjudged[outcome.kind, reason] += 1
            return
        occurred_at = outcome.occurred_at
        assert occurred_at is not None  # every judged record has a validated timestamp
        findings = outcome.findings
        # day_of's first case, inline: a UTC time's date is its first ten characters.
        day = occurred_at[:10] if occurred_at[-1] == "Z" else day_of(occurred_at)
        key = (outcome.kind, day, findings)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = _Cell()
        cell.records += 1
        if findings:
            subject = outcome.subject_id
            assert subject is not None
            cell.subjects.add(subject)
            self._seen += 1
            cell.window.add(instant_key(occurred_at), self._seen, occurred_at)

    def build(self, clock: Clock) -> Report:
        """The report as of now."""
        totals = _Totals(self._cells, self._unjudged)
        kinds = totals.kinds
        counts = RecordCounts(
            in_=sum(kinds.values()),
            passed=kinds[OutcomeKind.PASSED],
            redacted=kinds[OutcomeKind.REDACTED],
            dropped=kinds[OutcomeKind.DROPPED],
            deadlettered=kinds[OutcomeKind.DEADLETTERED],
        )
        window = Window.merged(totals.windows)
        return Report(
            policy_version=self._policy.version,
            policy_origin=self._policy.origin,
            mode=self._policy.mode,
            destination=self._policy.destination,
            key_id=self._key_id,
            source=self._source,
            generated_at=rfc3339(clock.now()),
            summary=_summary(counts, totals.violations, self._policy.mode),
            records=counts,
            violations=totals.violations,
            violations_by_rule=_sorted(totals.by_rule),
            identifiers_redacted_by_type=_sorted(totals.by_type),
            affected_subjects=len(totals.subjects),
            affected_subjects_by_rule=_sorted_sets(totals.subjects_by_rule),
            affected_subjects_by_type=_sorted_sets(totals.subjects_by_type),
            deadletters_by_reason=_sorted(totals.reasons),
            ledger=self._ledger.build() if self._ledger is not None else None,
            first_seen=window.first_text,
            last_seen=window.last_text,
            rules=self._rules(totals),
            identifier_types=[
                TypeSummary(
                    identifier_type=kind,
                    findings=n,
                    affected_subjects=len(totals.subjects_by_type[kind]),
                    first_seen=(by_type := Window.merged(totals.windows_by_type[kind])).first_text,
                    last_seen=by_type.last_text,
                )
                for kind, n in sorted(totals.by_type.items())
            ],
            by_day=[
                DaySummary(
                    day=name,
                    records=day.records,
                    findings=day.findings,
                    affected_subjects=len(day.subjects),
                )
                for name, day in sorted(totals.days.items())
            ],
        )

    def _rules(self, totals: _Totals) -> list[RuleSummary]:
        names = [rule.name for rule in self._policy.rules]
        # A finding always names a policy rule; any other name is still reported.
        names += sorted(set(totals.by_rule) - set(names))
        described = {rule.name: rule for rule in self._policy.rules}
        summaries = []
        for name in names:
            rule = described.get(name)
            window = Window.merged(totals.windows_by_rule.get(name, ()))
            by_type = {
                kind: len(subjects)
                for (rule_name, kind), subjects in sorted(totals.subjects_by_rule_type.items())
                if rule_name == name
            }
            summaries.append(
                RuleSummary(
                    rule=name,
                    description=rule.description if rule else _UNLISTED.get(name, ""),
                    action=str(rule.action) if rule else "",
                    findings=totals.by_rule.get(name, 0),
                    affected_subjects=len(totals.subjects_by_rule.get(name, ())),
                    affected_subjects_by_type=by_type,
                    first_seen=window.first_text,
                    last_seen=window.last_text,
                )
            )
        return summaries


class _Day:
    __slots__ = ("findings", "records", "subjects")

    def __init__(self) -> None:
        self.records = 0
        self.findings = 0
        self.subjects: set[str] = set()


class _Totals:
    """The report's counts, subjects and windows, summed from the builder's cells."""

    def __init__(
        self,
        cells: dict[_CellKey, _Cell],
        unjudged: Counter[tuple[OutcomeKind, DeadLetterReason]],
    ) -> None:
        self.kinds: Counter[OutcomeKind] = Counter()
        self.reasons: Counter[str] = Counter()
        for (kind, reason), count in unjudged.items():
            self.kinds[kind] += count
            self.reasons[str(reason)] += count
        self.violations = 0
        self.by_rule: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.subjects: set[str] = set()
        self.subjects_by_rule: defaultdict[str, set[str]] = defaultdict(set)
        self.subjects_by_type: defaultdict[str, set[str]] = defaultdict(set)
        self.subjects_by_rule_type: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self.days: defaultdict[str, _Day] = defaultdict(_Day)
        self.windows: list[Window] = []
        self.windows_by_rule: defaultdict[str, list[Window]] = defaultdict(list)
        self.windows_by_type: defaultdict[str, list[Window]] = defaultdict(list)
        for (kind, day_name, findings), cell in cells.items():
            self.kinds[kind] += cell.records
            day = self.days[day_name]
            day.records += cell.records
            if findings:
                self._add_findings(day, findings, cell)

    def _add_findings(self, day: _Day, findings: tuple[FindingSummary, ...], cell: _Cell) -> None:
        self.violations += cell.records
        day.findings += len(findings) * cell.records
        day.subjects |= cell.subjects
        self.subjects |= cell.subjects
        self.windows.append(cell.window)
        for rule, kind in findings:  # every finding counts, a rule found twice twice
            self.by_rule[rule] += cell.records
            self.by_type[kind] += cell.records
        for rule in {rule for rule, _ in findings}:
            self.subjects_by_rule[rule] |= cell.subjects
            self.windows_by_rule[rule].append(cell.window)
        for kind in {kind for _, kind in findings}:
            self.subjects_by_type[kind] |= cell.subjects
            self.windows_by_type[kind].append(cell.window)
        for rule, kind in set(findings):
            self.subjects_by_rule_type[rule, kind] |= cell.subjects


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
