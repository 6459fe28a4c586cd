"""Inline SVG charts for the HTML report: no scripts, nothing fetched."""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

BAR = "#c0392b"
MUTED = "#9aa4b5"
GRID = "#e3e7ee"
# Beyond this many days the day chart shows only days that have records.
_MAX_FILLED_DAYS = 400


Day = tuple[str, int, int, int]
"""``(UTC day, records, accounts affected, identifiers found)``."""


def _filled(days: list[Day]) -> list[Day]:
    """Every day from the first to the last, absent days at zero (time reads true)."""
    first, last = date.fromisoformat(days[0][0]), date.fromisoformat(days[-1][0])
    span = (last - first).days + 1
    if span > _MAX_FILLED_DAYS:
        return days
    known = {day[0]: day for day in days}
    every = ((first + timedelta(days=i)).isoformat() for i in range(span))
    return [known.get(day, (day, 0, 0, 0)) for day in every]


def _empty_runs(days: list[Day]) -> list[tuple[int, int]]:
    """``(index, length)`` of each run of days without records."""
    runs: list[tuple[int, int]] = []
    for i, day in enumerate(days):
        if day[1]:
            continue
        if runs and sum(runs[-1]) == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def _nice_peak(peak: int) -> int:
    """A round axis maximum at or above ``peak``, at most a quarter above it."""
    if peak <= 1:
        return 1
    magnitude: int = 10 ** (len(str(peak)) - 1)
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if peak <= step * magnitude:
            return int(step * magnitude)
    return 10 * magnitude


def day_chart(days: list[Day]) -> str:
    """Bars of accounts affected per UTC day; days without any record are shaded grey,
    so that an outage does not read as a day without violations."""
    if not days:
        return '<p class="note">No records.</p>'
    days = _filled(days)
    width, height, left, bottom, top = 900, 230, 52, 40, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = _nice_peak(max(day[2] for day in days))
    step = plot_w / len(days)
    bar_w = max(step * 0.8, 1.0)
    label_every = max(1, round(len(days) / 8))
    parts = [
        f'<svg role="img" aria-label="Accounts affected per day" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">'
    ]
    for first, count in _empty_runs(days):
        last_day = days[first + count - 1][0]
        parts.append(
            f'<rect x="{left + first * step:.1f}" y="{top}" width="{count * step:.1f}" '
            f'height="{plot_h}" fill="{GRID}" opacity="0.7"><title>{escape(days[first][0])} '
            f"to {escape(last_day)}: no records</title></rect>"
        )
    for fraction in (0.0, 0.5, 1.0) if peak % 2 == 0 else (0.0, 1.0):
        y = top + plot_h * (1 - fraction)
        value = round(peak * fraction)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" '
            f'stroke="{MUTED if fraction == 0 else GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,}</text>'
        )
    for i, (day, records, accounts, findings) in enumerate(days):
        h = plot_h * accounts / peak
        x = left + i * step + (step - bar_w) / 2
        if accounts:
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{BAR}"><title>{escape(day)}: {accounts:,} accounts, '
                f"{findings:,} identifiers, {records:,} records</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{left + i * step + step / 2:.1f}" y="{height - 20}" '
                f'text-anchor="middle">{escape(day)}</text>'
            )
    legend = "accounts with at least one finding, per UTC day"
    if any(not day[1] for day in days):
        legend += "; grey: no records that day"
    parts.append(f'<text x="{left}" y="{height - 5}" fill="{MUTED}">{legend}</text></svg>')
    return "".join(parts)


def hbar_chart(rows: list[tuple[str, int]], unit: str) -> str:
    """Horizontal bars, one per row, labelled with the count and ``unit``."""
    if not rows:
        return '<p class="note">No findings.</p>'
    row_h, label_w, width = 26, 200, 900
    peak = max(n for _, n in rows) or 1
    height = row_h * len(rows) + 4
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (name, n) in enumerate(rows):
        y = i * row_h + 4
        w = (width - label_w - 140) * n / peak
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 8}" fill="{BAR}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{n:,} {escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def outcome_bar(outcomes: list[tuple[str, int, str]]) -> str:
    """One stacked bar of record outcomes (``(label, count, colour)``) with a legend."""
    total = sum(n for _, n, _ in outcomes)
    if not total:
        return '<p class="note">No records.</p>'
    width, bar_h = 900, 26
    parts = [
        f'<svg role="img" aria-label="Record outcomes" viewBox="0 0 {width} 58" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    x = 0.0
    for label, n, colour in outcomes:
        w = width * n / total
        if w > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                f"<title>{escape(label)}: {n:,}</title></rect>"
            )
        x += w
    legend_x = 0
    for label, n, colour in outcomes:
        text = f"{label} {n:,} ({100 * n / total:.1f}%)"
        parts.append(
            f'<rect x="{legend_x}" y="38" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 17}" y="49">{escape(text)}</text>'
        )
        legend_x += 24 + 7 * len(text)
    parts.append("</svg>")
    return "".join(parts)
