"""Replay: the live decision step over history, into files and an impact report.

Writes nothing to live topics and commits no offsets: the caller provides the
records (a file, or a topic read without a consumer group) and the outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from enforcer.core.clock import Clock
from enforcer.core.step import InputRecord, Outcome, Step
from enforcer.outputs.report.aggregate import ReportBuilder
from enforcer.outputs.report.model import LedgerSummary, ReplaySource, Report


class OutcomeWriter(Protocol):
    """Where replay outcomes go (files, or topics with a prefix)."""

    def write(self, outcome: Outcome) -> None:
        """Write what one outcome produces."""
        ...


def replay(
    records: Iterable[InputRecord],
    step: Step,
    writer: OutcomeWriter,
    source: ReplaySource,
    clock: Clock,
    on_record: Callable[[InputRecord], None] | None = None,
    ledger: LedgerSummary | None = None,
) -> Report:
    """Run ``step`` over ``records``, write each outcome, and report on them all.

    ``ledger`` describes the purpose ledger ``step`` judges by, if any; the report then
    says what it knew and changed."""
    builder = ReportBuilder(step.policy, source, step.key_id, ledger)
    write, add = writer.write, builder.add
    if ledger is None and on_record is None:
        # The common case (a file, no progress bar) without a test per record.
        for record in records:
            outcome = step(record)
            write(outcome)
            add(outcome)
        return builder.build(clock)
    for record in records:
        if ledger is None:
            outcome, decision = step(record), None
        else:  # the same decision, with its per-identifier judgements for the ledger counts
            outcome, decision = step.explain(record)
        write(outcome)
        add(outcome, decision)
        if on_record is not None:
            on_record(record)
    return builder.build(clock)
