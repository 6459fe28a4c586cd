"""The report's ``ledger`` part: what the purpose ledger knew, and what it changed.

Counts, per judged identifier, whether the ledger knew it, and tallies the
``purpose-not-granted`` findings: how many, whose (distinct subjects), from when to
when, and per UTC day. Memory grows with those subjects and days only.
"""

from __future__ import annotations

from collections import defaultdict

from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED
from enforcer.core.policy.evaluate import Decision
from enforcer.core.step import Outcome
from enforcer.outputs.report.model import LedgerJudged, LedgerSummary, NotGranted, NotGrantedDay
from enforcer.outputs.report.timing import Window, day_of, instant_key


class LedgerTally:
    """Accumulates what the ledger did to the outcomes; :meth:`build` gives the summary."""

    def __init__(self, base: LedgerSummary) -> None:
        self._base = base
        self._known = 0
        self._unknown = 0
        self._findings = 0
        self._subjects: set[str] = set()
        self._window = Window()
        self._days: defaultdict[str, tuple[int, set[str]]] = defaultdict(lambda: (0, set()))

    def add(self, outcome: Outcome, decision: Decision | None) -> None:
        """Count one outcome and the decision behind it (``None``: not judged)."""
        if decision is not None:
            for judgement in decision.identifiers:
                if judgement.from_ledger:
                    self._known += 1
                elif judgement.claimed is not None:  # judged under a ledger setting
                    self._unknown += 1
        findings = outcome.findings
        # Most outcomes have no findings: no generator built for them.
        found = sum(1 for f in findings if f.rule == PURPOSE_NOT_GRANTED) if findings else 0
        if not found:
            return
        subject, occurred_at = outcome.subject_id, outcome.occurred_at
        assert subject is not None and occurred_at is not None  # a finding: a judged event
        self._findings += found
        self._subjects.add(subject)
        self._window.add(instant_key(occurred_at), self._findings, occurred_at)
        day = day_of(occurred_at)
        count, subjects = self._days[day]
        subjects.add(subject)
        self._days[day] = (count + found, subjects)

    def build(self) -> LedgerSummary:
        """The summary as of now."""
        not_granted = NotGranted(
            findings=self._findings,
            affected_subjects=len(self._subjects),
            first_seen=self._window.first_text,
            last_seen=self._window.last_text,
            by_day=[
                NotGrantedDay(day=day, findings=count, affected_subjects=len(subjects))
                for day, (count, subjects) in sorted(self._days.items())
            ],
        )
        return self._base.model_copy(
            update={
                "identifiers_judged": LedgerJudged(known=self._known, unknown=self._unknown),
                "purpose_not_granted": not_granted,
            }
        )
