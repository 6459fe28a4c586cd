"""The human report: one self-contained HTML page with inline SVG charts.

No scripts, fonts or images from anywhere: it opens offline and prints cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from enforcer.report.model import Report

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;
margin:0;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:28px 32px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 8px}
.sub{color:#5a6475;margin:0 0 20px}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.tile{border:1px solid #e1e5ec;border-radius:6px;padding:10px 12px}
.tile b{display:block;font-size:22px}.tile span{color:#5a6475;font-size:13px}
.tile.alert{border-color:#e8a0a0;background:#fdf3f3}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e8ebf0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;font-size:14px}
dt{color:#5a6475}dd{margin:0;word-break:break-all}
.note{color:#5a6475;font-size:13px}
svg text{font:12px system-ui,sans-serif;fill:#3b4456}
@media print{body{background:#fff}main{padding:0}}
"""

_BAR = "#c0392b"
_MUTED = "#9aa4b5"


def render_html(report: Report) -> str:
    """The report as a complete HTML document."""
    r = report
    counts = r.records
    tiles = [
        ("accounts affected", r.affected_subjects, r.affected_subjects > 0),
        ("violations (records)", r.violations, r.violations > 0),
        ("identifiers stopped", sum(r.violations_by_rule.values()), False),
        ("records in", counts.in_, False),
        ("passed", counts.passed, False),
        ("redacted", counts.redacted, False),
        ("dropped", counts.dropped, False),
        ("dead-lettered", counts.deadlettered, counts.deadlettered > 0),
    ]
    tile_html = "".join(
        f'<div class="tile{" alert" if alert else ""}"><b>{value:,}</b>'
        f"<span>{escape(label)}</span></div>"
        for label, value, alert in tiles
    )
    window = (
        f"{escape(r.first_seen)} to {escape(r.last_seen)}"
        if r.first_seen and r.last_seen
        else "no findings"
    )
    days = [(d.day, d.findings) for d in r.by_day]
    rule_rows = [
        (rule, n, r.affected_subjects_by_rule.get(rule, 0))
        for rule, n in r.violations_by_rule.items()
    ]
    type_rows = [
        (kind, n, r.affected_subjects_by_type.get(kind, 0))
        for kind, n in r.identifiers_redacted_by_type.items()
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Purpose-limitation impact report</title><style>{_CSS}</style></head>
<body><main>
<h1>Purpose-limitation impact report</h1>
<p class="sub">Identifiers collected for security purposes that would have reached
<b>{escape(r.destination)}</b> — {escape(r.source.kind)} <b>{escape(r.source.name)}</b>
{_range(r)}</p>
<div class="tiles">{tile_html}</div>
<h2>Findings per day</h2>
<p class="note">Days are UTC dates of each record's <code>occurred_at</code>.
Affected window: {window}.</p>
{_day_chart(days)}
<h2>By rule</h2>
{_hbar_chart([(name, n) for name, n, _ in rule_rows])}
{_table(("rule", "findings", "accounts"), rule_rows)}
<h2>By identifier type</h2>
{_hbar_chart([(name, n) for name, n, _ in type_rows])}
{_table(("identifier type", "findings", "accounts"), type_rows)}
<h2>Day by day</h2>
{
        _table(
            ("day", "records", "findings", "accounts"),
            [(d.day, d.records, d.findings, d.affected_subjects) for d in r.by_day],
        )
    }
<h2>Dead letters</h2>
{_table(("reason", "records"), list(r.deadletters_by_reason.items()))}
<h2>How this was produced</h2>
<dl>
<dt>policy version</dt><dd><code>{escape(r.policy_version)}</code></dd>
<dt>policy</dt><dd>{escape(r.policy_origin)}</dd>
<dt>mode</dt><dd>{escape(r.mode.value)}</dd>
<dt>generated at</dt><dd>{escape(r.generated_at)}</dd>
</dl>
<p class="note">Counts come from the enforcer's own decision code run over the recorded
events. A finding is one identifier a rule matched; an account is counted once however
many of its identifiers or records were affected. No identifier value is in this report;
violation events carry keyed fingerprints instead.</p>
</main></body></html>
"""


def _range(r: Report) -> str:
    if r.source.start or r.source.end:
        start = escape(r.source.start or "earliest")
        end = escape(r.source.end or "latest")
        return f"from {start} to {end}"
    return ""


def _table(headings: tuple[str, ...], rows: Sequence[Sequence[str | int]]) -> str:
    if not rows:
        return '<p class="note">None.</p>'
    head = "".join(
        f'<th class="{"n" if i else ""}">{escape(h)}</th>' for i, h in enumerate(headings)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell:,}</td>' if isinstance(cell, int) else f"<td>{escape(cell)}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _day_chart(days: list[tuple[str, int]]) -> str:
    if not days:
        return '<p class="note">No records.</p>'
    width, height, left, bottom, top = 900, 220, 44, 36, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max(n for _, n in days) or 1
    step = plot_w / len(days)
    bar_w = max(step * 0.8, 1.0)
    label_every = max(1, len(days) // 10)
    parts = [
        f'<svg role="img" aria-label="Findings per day" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        f'stroke="{_MUTED}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (day, n) in enumerate(days):
        h = plot_h * n / peak
        x = left + i * step + (step - bar_w) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
            f'height="{h:.1f}" fill="{_BAR}"><title>{escape(day)}: {n:,} findings</title></rect>'
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{left + i * step + step / 2:.1f}" y="{height - 14}" '
                f'text-anchor="middle">{escape(day)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _hbar_chart(rows: list[tuple[str, int]]) -> str:
    if not rows:
        return '<p class="note">No findings.</p>'
    row_h, label_w, width = 26, 220, 900
    peak = max(n for _, n in rows) or 1
    height = row_h * len(rows) + 4
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (name, n) in enumerate(rows):
        y = i * row_h + 4
        w = (width - label_w - 80) * n / peak
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 8}" fill="{_BAR}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{n:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
