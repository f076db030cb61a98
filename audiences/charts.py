"""A segment's size over time as inline SVG: a line with a dot per snapshot, no JavaScript."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.safestring import SafeString

from audiences.models import SegmentSize
from contacts.charts import chart_svg, dot, polyline, text, value_axis

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 760, 200, 56, 22, 12, 12
COLOUR = "#417690"


def size_line(points: Sequence[SegmentSize], *, label: str) -> SafeString:
    """Size per snapshot (hourly), placed by time; each dot titled with its moment and size."""
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    y_max = max([p.size for p in points] + [1])
    inner = value_axis(
        left=PAD_LEFT, right=WIDTH - PAD_RIGHT, top=PAD_TOP, bottom=PAD_TOP + plot_h, top_label=y_max
    )
    if not points:
        inner.append(
            text(
                PAD_LEFT + plot_w / 2,
                PAD_TOP + plot_h / 2,
                "No snapshot yet: the scheduled refresh writes one every hour.",
                anchor="middle",
                size=12,
                fill="#777",
            )
        )
    else:
        start, end = points[0].taken_at, points[-1].taken_at
        span = max((end - start).total_seconds(), 1.0)

        def x(p: SegmentSize) -> float:
            if len(points) == 1:
                return PAD_LEFT + plot_w / 2
            return PAD_LEFT + plot_w * (p.taken_at - start).total_seconds() / span

        def y(p: SegmentSize) -> float:
            return PAD_TOP + plot_h - plot_h * p.size / y_max

        inner.append(polyline([(x(p), y(p)) for p in points], stroke=COLOUR, width=2))
        inner += [
            dot(x(p), y(p), r=3, fill=COLOUR, title=f"{p.taken_at:%Y-%m-%d %H:00}: {p.size}") for p in points
        ]
        ends = [(points[0], "start"), (points[-1], "end")] if len(points) > 1 else [(points[0], "middle")]
        for p, anchor in ends:  # the end labels inside the frame, never clipped at its edges
            inner.append(
                text(float(x(p)), PAD_TOP + plot_h + 15, f"{p.taken_at:%m-%d %H:00}", anchor=anchor, size=10)
            )
    return chart_svg(inner, css_class="segment-chart", label=label, width=WIDTH, height=HEIGHT)
