"""A plan as one HTML page, beside the replay report: the counts, and the retractions
by fingerprint (never a raw value: the plan holds none)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from enforcer.remediate.plan import Plan
from enforcer.remediate.summary import seeding_line

_SHOWN = 1000
"""Retractions listed on the page; the plan file holds them all."""

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left}td.n{text-align:right}code{font-size:.85em}"
)


def plan_page(plan: Plan) -> str:
    """The page, self-contained (no script, no outside resource)."""
    h = plan.history
    rows = [
        ("plan id", plan.plan_id),
        ("sink topic", plan.sink_topic),
        ("range", f"{plan.since or 'the beginning'} to {plan.until or 'the end'}"),
        ("policy version", plan.policy_version),
        ("ledger", plan.ledger),
        ("fingerprint key id", plan.key_id),
        ("records read", f"{h.records:,}"),
        ("forwarded records", f"{h.forwarded:,} ({h.unreadable:,} unreadable)"),
        ("retraction records", f"{h.retractions:,}"),
        ("records not the enforcer's", f"{h.other:,}"),
        ("identifiers still exposed", f"{plan.exposed:,}"),
        ("retractions planned", f"{len(plan.retractions):,}"),
        ("subjects affected", f"{plan.affected_subjects:,}"),
    ]
    seeding = seeding_line(plan)
    if seeding is not None:
        rows.append(("exposure", seeding.removeprefix("exposure ")))
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Remediation plan {escape(plan.plan_id[:19])}</title><style>{_STYLE}</style>",
        "</head><body><h1>Remediation plan</h1><table>",
        *(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows),
        "</table>",
        _counts("Retractions by rule", plan.by_rule),
        _counts("Retractions by identifier type", plan.by_type),
        _counts("Retractions by day last forwarded (UTC)", plan.by_day, by_name=True),
        f"<h2>Retractions (first {min(_SHOWN, len(plan.retractions)):,} of "
        f"{len(plan.retractions):,})</h2><table><tr><th>subject</th><th>type</th>"
        "<th>fingerprint</th><th>rule</th></tr>",
        *(
            f"<tr><td>{escape(r.subject_id)}</td><td>{escape(r.identifier_type)}</td>"
            f"<td><code>{escape(r.fingerprint)}</code></td><td>{escape(r.rule)}</td></tr>"
            for r in plan.retractions[:_SHOWN]
        ),
        "</table></body></html>",
    ]
    return "\n".join(parts)


def _counts(title: str, table: Mapping[str, int], *, by_name: bool = False) -> str:
    items = sorted(table.items()) if by_name else sorted(table.items(), key=lambda kv: -kv[1])
    body = "".join(
        f"<tr><td>{escape(name)}</td><td class=n>{count:,}</td></tr>" for name, count in items
    )
    return f"<h2>{escape(title)}</h2><table>{body or '<tr><td>none</td></tr>'}</table>"
