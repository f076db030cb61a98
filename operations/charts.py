"""Small inline-SVG charts for the Studio's Operations page: no JavaScript, nothing to load.

Every value is computed here from the selectors' rows; the template only places the SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

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
    axis = [
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH}" y2="{PAD_TOP + plot_h}" stroke="#999"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}" text-anchor="end" font-size="10">{escape(y_format.format(y_max))}</text>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" text-anchor="end" font-size="10">0</text>',
    ]
    return mark_safe(
        f'<svg class="ops-chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        + "".join(axis + inner)
        + "</svg>"
    )


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
                f'<text x="{x + slot / 2:.1f}" y="{PAD_TOP + plot_h + 15}" text-anchor="middle" font-size="10">'
                f"{day:%m-%d}</text>"
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
                f'<rect x="{x + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
                f'fill="{STATUS_COLOURS.get(status, "#607d8b")}"><title>{row["day"]:%Y-%m-%d}: {count} '
                f"{escape(status)}</title></rect>"
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
        inner.append(
            f'<line x1="{PAD_LEFT}" y1="{ty:.1f}" x2="{WIDTH}" y2="{ty:.1f}" stroke="{colour}" '
            f'stroke-dasharray="5 4"><title>{escape(key)} threshold {threshold:.1%}</title></line>'
        )
        inner.append(
            f'<text x="{WIDTH - 4}" y="{ty - 3:.1f}" text-anchor="end" font-size="10" fill="{colour}">'
            f"{escape(key.replace('_', ' '))} limit {threshold:.1%}</text>"
        )
        points = []
        for i, row in enumerate(rows):
            if not row["sent"]:  # no mail that day: no rate, not a rate of zero
                continue
            x, slot = _x(i, n)
            y = PAD_TOP + plot_h - plot_h * row[key] / y_max
            points.append(f"{x + slot / 2:.1f},{y:.1f}")
            over = row[key] > threshold
            marker = 'r="5" fill="#c62828" stroke="#000"' if over else f'r="2.5" fill="{colour}"'
            inner.append(
                f'<circle cx="{x + slot / 2:.1f}" cy="{y:.1f}" {marker}><title>{row["day"]:%Y-%m-%d}: '
                f"{escape(key.replace('_', ' '))} {row[key]:.2%} of {row['sent']} sent</title></circle>"
            )
        inner.insert(
            0, f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}"/>'
        )
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
                f'<rect x="{x + slot * 0.1 + j * width:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{width:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{row["day"]:%Y-%m-%d}: {row[key]} {escape(key)}</title></rect>'
            )
    return _frame(
        inner + _day_labels([r["day"] for r in rows], n), label=label, y_max=y_max, y_format="{:.0f}"
    )
