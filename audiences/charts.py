"""A segment's size over time as inline SVG: a line with a dot per snapshot, no JavaScript."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from audiences.models import SegmentSize

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 760, 200, 56, 22, 12, 12


def size_line(points: Sequence[SegmentSize], *, label: str) -> SafeString:
    """Size per snapshot (hourly), placed by time; each dot titled with its moment and size."""
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    y_max = max([p.size for p in points] + [1])
    inner = [
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP + plot_h}" stroke="#999"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}" text-anchor="end" font-size="10">{y_max}</text>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" text-anchor="end" font-size="10">0</text>',
    ]
    if not points:
        inner.append(
            f'<text x="{PAD_LEFT + plot_w / 2}" y="{PAD_TOP + plot_h / 2}" text-anchor="middle" font-size="12" '
            'fill="#777">No snapshot yet: the scheduled refresh writes one every hour.</text>'
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

        coords = " ".join(f"{x(p):.1f},{y(p):.1f}" for p in points)
        inner.append(f'<polyline fill="none" stroke="#417690" stroke-width="2" points="{coords}"/>')
        for p in points:
            inner.append(
                f'<circle cx="{x(p):.1f}" cy="{y(p):.1f}" r="3" fill="#417690">'
                f"<title>{p.taken_at:%Y-%m-%d %H:00}: {p.size}</title></circle>"
            )
        ends = [(points[0], "start"), (points[-1], "end")] if len(points) > 1 else [(points[0], "middle")]
        for p, anchor in ends:  # the end labels inside the frame, never clipped at its edges
            inner.append(
                f'<text x="{x(p):.1f}" y="{PAD_TOP + plot_h + 15}" text-anchor="{anchor}" font-size="10">'
                f"{p.taken_at:%m-%d %H:00}</text>"
            )
    return mark_safe(
        f'<svg class="segment-chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        + "".join(inner)
        + "</svg>"
    )
