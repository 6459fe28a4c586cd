"""The human report: one self-contained HTML page with inline SVG charts.

Written for an incident write-up: who was affected (accounts), by which rule and
identifier type, on which days, from when to when, what the enforcer did about it,
and exactly what was examined. No scripts, fonts or images from anywhere: it opens
offline and prints cleanly. Charts live in :mod:`enforcer.outputs.report.charts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from enforcer.core.models import Mode, as_utc, parse_rfc3339
from enforcer.outputs.report.charts import BAR, day_chart, hbar_chart, outcome_bar
from enforcer.outputs.report.model import Report
from enforcer.outputs.wording import counted

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;
margin:0;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:28px 32px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:30px 0 8px}
.sub{color:#5a6475;margin:0 0 18px}
.summary{border-left:4px solid %(bar)s;background:#fbf4f3;padding:12px 16px;margin:0 0 18px}
.summary.clear{border-color:#2e7d4f;background:#f1f8f4}
.summary p{margin:0 0 6px}.summary p:last-child{margin:0}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin-bottom:14px}
.tile{border:1px solid #e1e5ec;border-radius:6px;padding:10px 12px}
.tile b{display:block;font-size:22px}.tile span{color:#5a6475;font-size:13px}
.tile.alert{border-color:#e8a0a0;background:#fdf3f3}
table{border-collapse:collapse;width:100%%;font-size:14px;margin-top:6px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e8ebf0;vertical-align:top}
th{font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap}td.d{color:#5a6475;font-size:13px;min-width:170px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;font-size:14px}
dt{color:#5a6475}dd{margin:0;word-break:break-all}
.note{color:#5a6475;font-size:13px}
svg text{font:12px system-ui,sans-serif;fill:#3b4456}
section{break-inside:avoid}
@media print{body{background:#fff}main{padding:0}}
""" % {"bar": BAR}  # noqa: UP031 - the CSS is full of braces; %-formatting leaves them alone


def render_html(report: Report) -> str:
    """The report as a complete HTML document."""
    r = report
    found = sum(r.violations_by_rule.values())
    audit = r.mode is Mode.AUDIT
    days_hit = sum(1 for d in r.by_day if d.findings)
    tiles = [
        ("accounts affected", r.affected_subjects, r.affected_subjects > 0),
        (
            "identifiers found (audit: none would be removed)"
            if audit
            else "identifiers that would have been kept out",
            found,
            found > 0,
        ),
        ("records with a violation", r.violations, r.violations > 0),
        ("days with findings", days_hit, days_hit > 0),
    ]
    tile_html = "".join(
        f'<div class="tile{" alert" if alert else ""}"><b>{value:,}</b>'
        f"<span>{escape(label)}</span></div>"
        for label, value, alert in tiles
    )
    counts = r.records
    if audit:
        # Audit mode forwards records with violations unchanged: show them apart.
        outcomes = [
            ("would pass", counts.passed - r.violations, "#8fb3d9"),
            ("would pass with a violation (audit)", r.violations, BAR),
        ]
    else:
        outcomes = [
            ("would pass", counts.passed, "#8fb3d9"),
            ("would be redacted", counts.redacted, BAR),
            ("would be dropped", counts.dropped, "#7b241c"),
        ]
    outcomes.append(("would be dead-lettered", counts.deadlettered, "#b8bfcc"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Purpose-limitation impact report</title><style>{_CSS}</style></head>
<body><main>
<h1>Purpose-limitation impact report</h1>
<p class="sub">Destination <b>{escape(r.destination)}</b> · {_source_line(r)} ·
{escape(r.mode.value)} mode</p>
{_summary(r, found)}
<div class="tiles">{tile_html}</div>
<section><h2>What would have happened to the {_records(counts.in_)} examined</h2>
<p class="note">This is a replay: the policy's decisions over recorded events. It wrote
nothing to the live topics; every outcome here is what the enforcer would have done.</p>
{outcome_bar(outcomes)}</section>
<section><h2>Accounts affected per day</h2>
<p class="note">Days are UTC dates of each record's <code>occurred_at</code>. Hover a bar
for its counts.</p>
{day_chart([(d.day, d.records, d.affected_subjects, d.findings) for d in r.by_day])}</section>
<section><h2>By rule</h2>
{_rules_table(r)}
{_rule_type_table(r)}</section>
<section><h2>By identifier type</h2>
{_types(r)}</section>
{_ledger(r)}<section><h2>Day by day</h2>
{
        _table(
            ("day (UTC)", "records", "identifiers found", "accounts affected"),
            [(d.day, d.records, d.findings, d.affected_subjects) for d in r.by_day],
        )
    }</section>
<section><h2>Records that could not be assessed</h2>
{_deadletters(r)}</section>
<section><h2>Scope and method</h2>
{_scope(r)}</section>
</main></body></html>
"""


def _summary(r: Report, found: int) -> str:
    if not r.violations:
        return (
            f'<div class="summary clear"><p>No identifier in the {_records(r.records.in_)} '
            "examined broke the policy: nothing would have needed to be kept from "
            f"<b>{escape(r.destination)}</b>.</p></div>"
        )
    rules = ", ".join(f"<code>{escape(rule)}</code>" for rule in r.violations_by_rule)
    types = ", ".join(
        f"{escape(t.identifier_type)} ({t.affected_subjects:,} accounts)"
        for t in sorted(r.identifier_types, key=lambda t: -t.affected_subjects)
    )
    headline = (
        f"Between <b>{_when(r.first_seen)}</b> and <b>{_when(r.last_seen)}</b>, "
        f"<b>{r.affected_subjects:,} accounts</b> had {found:,} identifiers on their way to "
        f"<b>{escape(r.destination)}</b> that the policy does not allow there "
        f"(rules {rules}). Identifier types: {types}."
    )
    counts = r.records
    if r.mode is Mode.AUDIT:
        action = (
            "<b>Audit mode: nothing would have been removed.</b> These records would have "
            "been forwarded unchanged; enforce mode would have redacted or dropped "
            f"{r.violations:,} of them."
        )
    else:
        action = (
            "The enforcer would have kept these identifiers out. Would have been forwarded "
            f"with them removed (redacted): {_records(counts.redacted)}. Would have been "
            f"withheld entirely (dropped): {_records(counts.dropped)}."
        )
    return f'<div class="summary"><p>{headline}</p><p>{action}</p></div>'


def _records(n: int) -> str:
    return counted(n, "record")


def _source_line(r: Report) -> str:
    source = f"{escape(r.source.kind)} <b>{escape(r.source.name)}</b>"
    if r.source.start or r.source.end:
        start = escape(r.source.start or "earliest")
        end = escape(r.source.end or "latest")
        source += f" from {start} to {end}"
    return source


def _when(text: str | None) -> str:
    """An RFC 3339 time as ``2019-10-08 14:03:07 UTC``."""
    if not text:
        return "—"
    return as_utc(parse_rfc3339(text)).strftime("%Y-%m-%d %H:%M:%S UTC")


def _rules_table(r: Report) -> str:
    rows = [
        (
            rule.rule,
            rule.description or "",
            rule.action,
            rule.affected_subjects,
            rule.findings,
            _when(rule.first_seen),
            _when(rule.last_seen),
        )
        for rule in r.rules
    ]
    headings = ("rule", "what it means", "action", "accounts", "identifiers", "first", "last")
    return _table(headings, rows, text_classes={0: "t", 1: "d"})


def _rule_type_table(r: Report) -> str:
    kinds = sorted({kind for rule in r.rules for kind in rule.affected_subjects_by_type})
    if not kinds:
        return ""
    rows: list[list[str | int]] = [
        [rule.rule, *(rule.affected_subjects_by_type.get(kind, 0) for kind in kinds)]
        for rule in r.rules
        if rule.findings
    ]
    return (
        '<p class="note">Accounts affected by rule and identifier type (an account can '
        "appear under several):</p>" + _table(("rule", *kinds), rows, text_classes={0: "t"})
    )


def _types(r: Report) -> str:
    if not r.identifier_types:
        return '<p class="note">No findings.</p>'
    chart = hbar_chart(
        [(t.identifier_type, t.affected_subjects) for t in r.identifier_types], "accounts"
    )
    rows = [
        (
            t.identifier_type,
            t.affected_subjects,
            t.findings,
            _when(t.first_seen),
            _when(t.last_seen),
        )
        for t in r.identifier_types
    ]
    headings = ("identifier type", "accounts", "identifiers", "first seen", "last seen")
    return chart + _table(headings, rows, text_classes={3: "t", 4: "t"})


def _ledger(r: Report) -> str:
    """The purpose ledger's section; nothing when the replay used none."""
    ledger = r.ledger
    if ledger is None:
        return ""
    when = f"as of {_when(ledger.as_of)}" if ledger.as_of else "as of its end"
    state, records = ledger.state, ledger.records
    judged, found = ledger.identifiers_judged, ledger.purpose_not_granted
    rows = [
        ("ledger", f"{escape(ledger.source.kind)} {escape(ledger.source.name)}, {when}"),
        ("setting", escape(ledger.mode)),
        ("held", f"{state.identifiers:,} identifiers of {state.subjects:,} accounts"),
        (
            "ledger records",
            f"{records.applied:,} applied ({records.erased:,} erasures), "
            f"{records.invalid:,} invalid, {records.after_as_of:,} later than the as-of time",
        ),
        (
            "identifiers judged",
            f"{judged.known:,} known to the ledger, {judged.unknown:,} unknown to it",
        ),
        (
            "purpose not granted",
            f"{found.findings:,} identifiers of {found.affected_subjects:,} accounts, "
            f"from {_when(found.first_seen)} to {_when(found.last_seen)}",
        ),
    ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    days = _table(
        ("day (UTC)", "identifiers", "accounts"),
        [(d.day, d.findings, d.affected_subjects) for d in found.by_day],
    )
    return f"""<section><h2>Against the purpose ledger</h2>
<p class="note">Identifiers the ledger knows were judged by the purposes recorded when they
were collected, not by the tags on each event. <code>purpose-not-granted</code> counts
identifiers whose event claimed a purpose the ledger does not grant them.</p>
<dl>{items}</dl>
<p class="note">Purpose not granted, per day:</p>{days}</section>
"""


def _deadletters(r: Report) -> str:
    if not r.records.deadlettered:
        return '<p class="note">None: every record was assessed.</p>'
    return (
        f'<p class="note">Not valid identity events: {_records(r.records.deadlettered)}. '
        "None would have been forwarded, and they are not counted above; the originals are in "
        "<code>deadletter.jsonl</code> (or the dead-letter topic) for follow-up.</p>"
        + _table(("reason", "records"), list(r.deadletters_by_reason.items()))
    )


def _scope(r: Report) -> str:
    examined = f"{r.by_day[0].day} to {r.by_day[-1].day}" if r.by_day else "—"
    offsets = "; ".join(
        f"partition {o.partition}: offsets {o.start:,} to {o.end - 1:,}"
        if o.end > o.start
        else f"partition {o.partition}: none"
        for o in r.source.offsets
    )
    rows = [
        ("source", f"{escape(r.source.kind)} {escape(r.source.name)}"),
        ("records examined", f"{r.records.in_:,} (occurred {escape(examined)}, UTC days)"),
    ]
    if offsets:
        rows.append(("offsets read", escape(offsets)))
    rows.append(("input SHA-256", _sha256(r)))
    rows += [
        ("fingerprint key id", f"<code>{escape(r.key_id)}</code>"),
        ("policy", escape(r.policy_origin)),
        ("policy version", f"<code>{escape(r.policy_version)}</code>"),
        ("mode", escape(r.mode.value)),
        ("report generated", _when(r.generated_at)),
    ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f"""<dl>{items}</dl>
<p class="note">Counts come from the enforcer's own decision code run over the recorded
events. An identifier counts once per record it appears in; an account counts once however
many of its identifiers or records were affected. No identifier value is in this report.
The affected accounts and records are listed in <code>violations.jsonl</code> (subject id,
event id, source offset, rule, and a keyed fingerprint of each identifier).</p>"""


def _sha256(r: Report) -> str:
    if r.source.sha256:
        return f"<code>{escape(r.source.sha256)}</code>"
    if r.source.kind == "topic":
        return "— (a topic has no single byte stream: the offsets read identify the input)"
    return "—"


def _table(
    headings: tuple[str, ...],
    rows: Sequence[Sequence[str | int]],
    text_classes: dict[int, str] | None = None,
) -> str:
    if not rows:
        return '<p class="note">None.</p>'
    classes = text_classes or {}
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(len(headings))]
    head = "".join(
        f'<th class="{"n" if numeric[i] else ""}">{escape(h)}</th>' for i, h in enumerate(headings)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell:,}</td>'
            if isinstance(cell, int)
            else f'<td class="{classes.get(i, "")}">{escape(cell)}</td>'
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
