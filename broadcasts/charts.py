"""The Studio's broadcast report as a small inline SVG: one horizontal bar per outcome, no
JavaScript, nothing to load."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from broadcasts.selectors import Report

WIDTH, ROW_H, LABEL_W, COUNT_W = 520, 22, 110, 60
REPORT_ROWS = (
    ("delivered", "Delivered", "#2e7d32"),
    ("opened", "Opened", "#43a047"),
    ("clicked", "Clicked", "#66bb6a"),
    ("bounced", "Bounced", "#ef6c00"),
    ("complained", "Complained", "#c62828"),
    ("unsubscribed", "Unsubscribed", "#8d6e63"),
)


def report_bars(report: Report, *, label: str) -> SafeString:
    """A bar per report figure, scaled to the largest; each titled with its count."""
    values = {key: getattr(report, key) for key, _, _ in REPORT_ROWS}
    most = max([*values.values(), 1])
    plot_w = WIDTH - LABEL_W - COUNT_W
    height = ROW_H * len(REPORT_ROWS)
    parts = []
    for i, (key, name, colour) in enumerate(REPORT_ROWS):
        y = i * ROW_H
        w = plot_w * values[key] / most
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" font-size="12">{name}</text>'
            f'<rect class="bar-{key}" x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" '
            f'fill="{colour}"><title>{values[key]} {name.lower()}</title></rect>'
            f'<text x="{LABEL_W + w + 6:.1f}" y="{y + 15}" font-size="12">{values[key]}</text>'
        )
    return mark_safe(
        f'<svg class="broadcast-report-chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(parts) + "</svg>"
    )
