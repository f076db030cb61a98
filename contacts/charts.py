"""Inline-SVG drawing for the Studio's charts: no JavaScript, nothing to load.

The apps' chart modules (operations, broadcasts, audiences, journeys' readouts) compute their
values and lay them out; these functions write the SVG elements, so every chart draws a bar, a
line, a dot, an axis and a label alike. Text is escaped here (a `SafeString` passes as markup);
a whole number is written as it is, any other number to one decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString, mark_safe

SVG_NS = "http://www.w3.org/2000/svg"
AXIS_COLOUR = "#999"


def _n(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.1f}"


def _title(title: str | None) -> str:
    return "" if title is None else f"<title>{conditional_escape(title)}</title>"


def chart_svg(
    parts: Iterable[str],
    *,
    css_class: str,
    label: str,
    width: int,
    height: int,
    fluid: bool = True,
    max_width: int | None = None,
    style: str = "",
) -> SafeString:
    """The chart's root element around its parts: `fluid` fills the width it is given (at most
    `max_width` pixels), otherwise it is drawn at `width` by `height`; `style` is CSS for its text."""
    if not fluid:
        size = f'width="{width}" height="{height}"'
    elif max_width is not None:
        size = f'width="100%" style="max-width:{max_width}px"'
    else:
        size = 'width="100%" preserveAspectRatio="xMinYMin meet"'
    head = (
        f'<svg class="{css_class}" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" {size} xmlns="{SVG_NS}">'
    )
    sheet = f"<style>{style}</style>" if style else ""
    return mark_safe(head + sheet + "".join(parts) + "</svg>")  # every part escaped where it is made


def text(
    x: float,
    y: float,
    content: object,
    *,
    anchor: str | None = None,
    size: int | None = None,
    fill: str | None = None,
    css_class: str | None = None,
) -> str:
    """A label at (x, y); `anchor` is start (the default), middle or end."""
    attrs = f' class="{css_class}"' if css_class else ""
    attrs += f' x="{_n(x)}" y="{_n(y)}"'
    if anchor:
        attrs += f' text-anchor="{anchor}"'
    if size:
        attrs += f' font-size="{size}"'
    if fill:
        attrs += f' fill="{fill}"'
    return f"<text{attrs}>{conditional_escape(content)}</text>"


def bar(
    x: float, y: float, width: float, height: float, *, fill: str, title: str | None, css_class: str = ""
) -> str:
    """A rectangle from its top-left corner, titled (the tooltip) with what it counts."""
    attrs = f' class="{css_class}"' if css_class else ""
    return (
        f'<rect{attrs} x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" fill="{fill}">'
        f"{_title(title)}</rect>"
    )


def line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    *,
    stroke: str = AXIS_COLOUR,
    width: float | None = None,
    dashed: bool = False,
    title: str | None = None,
) -> str:
    attrs = f' x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}"'
    if width is not None:
        attrs += f' stroke-width="{width}"'
    if dashed:
        attrs += ' stroke-dasharray="5 4"'
    return f"<line{attrs}>{_title(title)}</line>" if title is not None else f"<line{attrs}/>"


def polyline(points: Sequence[tuple[float, float]], *, stroke: str, width: float) -> str:
    """A line through the points, in their order."""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline fill="none" stroke="{stroke}" stroke-width="{width}" points="{coords}"/>'


def dot(x: float, y: float, *, r: float, fill: str, title: str | None, stroke: str | None = None) -> str:
    """A point of a line, titled with its moment and value."""
    ring = f' stroke="{stroke}"' if stroke else ""
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"{ring}>{_title(title)}</circle>'


def value_axis(*, left: float, right: float, top: float, bottom: float, top_label: object) -> list[str]:
    """The baseline from `left` to `right` at `bottom`, and the value scale's two ends beside it:
    `top_label` at the top of the plot, 0 at the baseline."""
    return [
        line(left, bottom, right, bottom),
        text(left - 6, top + 8, top_label, anchor="end", size=10),
        text(left - 6, bottom, 0, anchor="end", size=10),
    ]


def whisker(low: float, high: float, y: float, *, reach: float = 6, stroke: str = "#222") -> list[str]:
    """An interval from `low` to `high` at height `y`, with end caps `reach` above and below."""
    return [
        line(low, y, high, y, stroke=stroke, width=1.5),
        line(low, y - reach, low, y + reach, stroke=stroke),
        line(high, y - reach, high, y + reach, stroke=stroke),
    ]
