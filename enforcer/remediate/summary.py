"""A plan on one screen: what was read, what is exposed, what would be retracted."""

from __future__ import annotations

from collections.abc import Mapping

from enforcer.outputs.wording import counted
from enforcer.remediate.plan import Plan

_TOP = 8
"""Rows shown per table: the largest; the rest are summed on one line."""


def summary_lines(plan: Plan) -> list[str]:
    """The plan's summary, a few lines of text (fingerprints never shown)."""
    h = plan.history
    window = f"{plan.since or 'the beginning'} to {plan.until or 'the end'}"
    lines = [
        f"remediation plan {plan.plan_id}",
        f"  sink {plan.sink_topic}, {window}; policy {plan.policy_version}, "
        f"ledger {plan.ledger}, key {plan.key_id}",
        f"  read {h.records:,} records: {h.forwarded:,} forwarded, {h.retractions:,} "
        f"retractions, {h.other:,} not the enforcer's; {h.unreadable:,} forwarded "
        "records unreadable (their identifiers cannot be judged)",
        f"  {plan.exposed:,} identifiers still exposed; {len(plan.retractions):,} to retract "
        f"({plan.affected_subjects:,} subjects), {plan.exposed - len(plan.retractions):,} allowed",
    ]
    seeding = seeding_line(plan)
    if seeding is not None:
        lines.append(f"  {seeding}")
    for title, table in (
        ("by rule", plan.by_rule),
        ("by type", plan.by_type),
        ("by day last forwarded", plan.by_day),
    ):
        if table:
            lines.append(f"  {title}: {_table(table, by_count=title != 'by day last forwarded')}")
    return lines


def seeding_line(plan: Plan) -> str | None:
    """What a plan made with ``--with-exposure`` carries besides its retractions, and
    how it must be applied (``None`` for a plan without exposure)."""
    if plan.exposure is None:
        return None
    subjects = len({e.subject_id for e in plan.exposure})
    return (
        f"exposure to seed: {counted(len(plan.exposure), 'identifier')} of "
        f"{counted(subjects, 'subject')} (apply with --exposure-topic)"
    )


def _table(table: Mapping[str, int], *, by_count: bool) -> str:
    items = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]) if by_count else kv)
    shown = [f"{name} {count:,}" for name, count in items[:_TOP]]
    rest = items[_TOP:]
    if rest:
        shown.append(f"{len(rest)} more {sum(c for _, c in rest):,}")
    return ", ".join(shown)
