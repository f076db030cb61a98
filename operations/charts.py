"""Small inline-SVG charts for the Studio's Operations page: no JavaScript, nothing to load.

Every value is computed here from the selectors' rows; the template only places the SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.safestring import SafeString

from contacts.charts import bar, chart_svg, dot, line, polyline, text, value_axis

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 760, 200, 48, 22, 10
# Status colours: delivered-ish greens, trouble in reds, the rest grey.
STATUS_COLOURS = {
    "delivered": "#2e7d32",
    "opened": "#43a047",
    "clicked": "#66bb6a",
    "sent": "#90caf9",
    "queued": "#bdbdbd",
    "sending": "#64b5f6",
    "unknown": "#8d6e63",
    "skipped": "#cfd8dc",
    "suppressed": "#9e9e9e",
    "bounced": "#ef6c00",
    "complained": "#c62828",
    "failed": "#6a1b9a",
}
STATUS_ORDER = list(STATUS_COLOURS)


def _frame(inner: list[str], *, label: str, y_max: float, y_format: str) -> SafeString:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    axis = value_axis(
        left=PAD_LEFT, right=WIDTH, top=PAD_TOP, bottom=PAD_TOP + plot_h, top_label=y_format.format(y_max)
    )
    return chart_svg(axis + inner, css_class="ops-chart", label=label, width=WIDTH, height=HEIGHT)


def _x(i: int, n: int) -> tuple[float, float]:
    """Left edge and width of slot i of n."""
    slot = (WIDTH - PAD_LEFT) / max(n, 1)
    return PAD_LEFT + i * slot, slot


def _day_labels(days: Sequence[Any], n: int) -> list[str]:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    out = []
    step = max(1, n // 10)
    for i, day in enumerate(days):
        if i % step == 0:
            x, slot = _x(i, n)
            out.append(
                text(float(x + slot / 2), PAD_TOP + plot_h + 15, f"{day:%m-%d}", anchor="middle", size=10)
            )
    return out


def stacked_bars(rows: list[dict[str, Any]], *, label: str) -> SafeString:
    """Sends per day, a bar per day stacked by status; each segment titled with its count."""
    n = len(rows)
    totals = [sum(r["counts"].values()) for r in rows]
    y_max = max([*totals, 1])
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    inner = []
    for i, row in enumerate(rows):
        x, slot = _x(i, n)
        y = PAD_TOP + plot_h
        for status in [*STATUS_ORDER, *sorted(set(row["counts"]) - set(STATUS_ORDER))]:
            count = row["counts"].get(status, 0)
            if not count:
                continue
            h = plot_h * count / y_max
            y -= h
            inner.append(
                bar(
                    float(x + slot * 0.1),
                    float(y),
                    float(slot * 0.8),
                    float(h),
                    fill=STATUS_COLOURS.get(status, "#607d8b"),
                    title=f"{row['day']:%Y-%m-%d}: {count} {status}",
                )
            )
    return _frame(
        inner + _day_labels([r["day"] for r in rows], n), label=label, y_max=y_max, y_format="{:.0f}"
    )


def rate_lines(rows: list[dict[str, Any]], *, series: dict[str, tuple[str, float]], label: str) -> SafeString:
    """Rates per day as lines, each with its threshold as a dashed line of the same colour.

    `series` maps a row key to (colour, threshold).
    """
    n = len(rows)
    peak = max([r[key] for r in rows for key in series] + [t for _, t in series.values()])
    y_max = peak * 1.15 or 0.01
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    inner = []
    for key, (colour, threshold) in series.items():
        ty = PAD_TOP + plot_h - plot_h * threshold / y_max
        name = key.replace("_", " ")
        inner.append(
            line(
                PAD_LEFT,
                float(ty),
                WIDTH,
                float(ty),
                stroke=colour,
                dashed=True,
                title=f"{key} threshold {threshold:.1%}",
            )
        )
        inner.append(
            text(
                WIDTH - 4, float(ty - 3), f"{name} limit {threshold:.1%}", anchor="end", size=10, fill=colour
            )
        )
        points = []
        for i, row in enumerate(rows):
            if not row["sent"]:  # no mail that day: no rate, not a rate of zero
                continue
            x, slot = _x(i, n)
            y = PAD_TOP + plot_h - plot_h * row[key] / y_max
            points.append((x + slot / 2, y))
            title = f"{row['day']:%Y-%m-%d}: {name} {row[key]:.2%} of {row['sent']} sent"
            if row[key] > threshold:  # over the limit: a larger red dot
                inner.append(dot(x + slot / 2, y, r=5, fill="#c62828", stroke="#000", title=title))
            else:
                inner.append(dot(x + slot / 2, y, r=2.5, fill=colour, title=title))
        inner.insert(0, polyline(points, stroke=colour, width=1.5))
    return _frame(
        inner + _day_labels([r["day"] for r in rows], n), label=label, y_max=y_max, y_format="{:.1%}"
    )


def paired_bars(rows: list[dict[str, Any]], *, keys: dict[str, str], label: str) -> SafeString:
    """Two (or more) bars per day side by side, e.g. journey entries and completions."""
    n = len(rows)
    y_max = max([r[k] for r in rows for k in keys] + [1])
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    inner = []
    for i, row in enumerate(rows):
        x, slot = _x(i, n)
        width = slot * 0.8 / len(keys)
        for j, (key, colour) in enumerate(keys.items()):
            h = plot_h * row[key] / y_max
            inner.append(
                bar(
                    float(x + slot * 0.1 + j * width),
                    float(PAD_TOP + plot_h - h),
                    float(width),
                    float(h),
                    fill=colour,
                    title=f"{row['day']:%Y-%m-%d}: {row[key]} {key}",
                )
            )
    return _frame(
        inner + _day_labels([r["day"] for r in rows], n), label=label, y_max=y_max, y_format="{:.0f}"
    )
