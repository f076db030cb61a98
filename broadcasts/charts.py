"""The Studio's broadcast report as a small inline SVG: one horizontal bar per outcome, no
JavaScript, nothing to load."""

from __future__ import annotations

from django.utils.safestring import SafeString

from broadcasts.selectors import Report
from contacts.charts import bar, chart_svg, text

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
    parts = []
    for i, (key, name, colour) in enumerate(REPORT_ROWS):
        y = i * ROW_H
        w = plot_w * values[key] / most
        parts += [
            text(LABEL_W - 8, y + 15, name, anchor="end", size=12),
            bar(
                LABEL_W,
                y + 3,
                w,
                ROW_H - 6,
                fill=colour,
                title=f"{values[key]} {name.lower()}",
                css_class=f"bar-{key}",
            ),
            text(LABEL_W + w + 6, y + 15, values[key], size=12),
        ]
    height = ROW_H * len(REPORT_ROWS)
    return chart_svg(
        parts, css_class="broadcast-report-chart", label=label, width=WIDTH, height=height, fluid=False
    )
