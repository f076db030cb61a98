"""The journey map as a picture: inline SVG drawn on the server, no script.

One box per node in rows (journeys/journey_map.py lays them out), arrows between them with the
number of runs that took each, a box's runs parked there now, and where runs ended below it:
completed, failed, and exits by reason. A box links to the same page with `?node=` so the page lists
the runs parked there.
"""

from __future__ import annotations

from urllib.parse import quote

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from journeys.journey_map import JourneyMap, MapNode

BOX_W, COL_W, ROW_GAP, PAD = 250, 290, 56, 16
KIND_COLORS = {
    "entry": "#417690",
    "send": "#1a56db",
    "sleep": "#6b7280",
    "wait": "#7c3aed",
    "checkpoint": "#0f766e",
    "history": "#b45309",
    "guard": "#b45309",
}
KIND_NAMES = {
    "entry": "entry",
    "send": "send",
    "sleep": "sleep",
    "wait": "wait",
    "checkpoint": "checkpoint",
    "history": "branch",
    "guard": "branch",
}


def _lines(node: MapNode) -> list[tuple[str, str]]:
    """The box's text below its title, each with a class: what passed, who is here, who ended here."""
    lines = [("n", f"{node.passed:,} passed · {node.parked:,} here now")]
    if node.completed:
        lines.append(("ok", f"✓ {node.completed:,} completed"))
    for reason, count in sorted(node.exits.items(), key=lambda i: -i[1]):
        lines.append(("exit", f"↳ {count:,} exited: {reason}"[:42]))
    if node.failed:
        lines.append(("fail", f"✕ {node.failed:,} failed"))
    return lines


def _box_height(node: MapNode) -> int:
    return 34 + 15 * len(_lines(node))


def map_svg(journey_map: JourneyMap, *, journey_id: str, selected: str | None = None) -> SafeString:
    rows: dict[int, list[MapNode]] = {}
    for node in journey_map.nodes:
        rows.setdefault(node.rank, []).append(node)
    columns = max((len(r) for r in rows.values()), default=1)
    width = PAD * 2 + COL_W * columns
    place: dict[str, tuple[float, float, float]] = {}  # key -> x, y, height
    y = float(PAD)
    for rank in sorted(rows):
        row = rows[rank]
        offset = (columns - len(row)) * COL_W / 2  # centre short rows
        height = max(_box_height(n) for n in row)
        for node in row:
            place[node.key] = (PAD + offset + node.column * COL_W - _first_column(row) * COL_W, y, height)
        y += height + ROW_GAP
    total_h = int(y - ROW_GAP + PAD)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey-map" role="img" width="{width}" '
        f'height="{total_h}" viewBox="0 0 {width} {total_h}" aria-label="Map of {escape(journey_id)}">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
        "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#888'/></marker></defs>",
        "<style>text{font:12px sans-serif;fill:#333}.t{font-weight:bold;fill:#fff}.k{font-size:10px;"
        "fill:#fff;opacity:.85}.n{fill:#444}.ok{fill:#2e7d32}.exit{fill:#b36b00}.fail{fill:#c62828}"
        ".c{font-size:11px;fill:#555}a:hover rect.box{stroke:#000;stroke-width:2}</style>",
    ]
    for source, target, runs in journey_map.edges:
        if source not in place or target not in place:
            continue
        sx, sy, sh = place[source]
        tx, ty, _ = place[target]
        x1, y1, x2, y2 = sx + BOX_W / 2, sy + sh, tx + BOX_W / 2, ty
        if (source, target) in journey_map.back_edges or y2 <= y1:
            # A loop back up: around the right of the boxes.
            x1, y1, x2, y2 = sx + BOX_W, sy + sh / 2, tx + BOX_W, ty + 14
            path = f"M{x1:.0f},{y1:.0f} C{x1 + 50:.0f},{y1:.0f} {x2 + 50:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            label_x, label_y = max(x1, x2) + 30, (y1 + y2) / 2
            dash = " stroke-dasharray='5 3'"
        else:
            mid = (y1 + y2) / 2
            path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2 - 2:.0f}"
            label_x, label_y = (x1 + x2) / 2 + 6, mid + 4
            dash = ""
        out.append(
            f"<path d='{path}' fill='none' stroke='#888' stroke-width='1.5'{dash} marker-end='url(#arrow)'>"
            f"<title>{runs:,} runs went on</title></path>"
            f'<text class="c" x="{label_x:.0f}" y="{label_y:.0f}">{runs:,}</text>'
        )
    for node in journey_map.nodes:
        x, y0, _ = place[node.key]
        h = _box_height(node)
        color = KIND_COLORS.get(node.kind, "#555")
        href = f"?node={quote(node.key, safe='')}#parked"
        stroke = ' stroke="#111" stroke-width="3"' if node.key == selected else ""
        out.append(
            f'<a href="{escape(href)}" class="map-node" data-node="{escape(node.key)}" '
            f'data-parked="{node.parked}" data-passed="{node.passed}">'
            f'<rect class="box" x="{x:.0f}" y="{y0:.0f}" width="{BOX_W}" height="{h}" rx="6" '
            f'fill="#fff" stroke="{color}"{stroke}/>'
            f'<rect x="{x:.0f}" y="{y0:.0f}" width="{BOX_W}" height="24" rx="6" fill="{color}"/>'
            f'<text class="k" x="{x + 8:.0f}" y="{y0 + 16:.0f}">{KIND_NAMES.get(node.kind, escape(node.kind))}</text>'
            f'<text class="t" x="{x + 70:.0f}" y="{y0 + 16:.0f}">{escape(node.label[:26])}</text>'
        )
        for i, (css, text) in enumerate(_lines(node)):
            out.append(
                f'<text class="{css}" x="{x + 8:.0f}" y="{y0 + 40 + 15 * i:.0f}">{escape(text)}</text>'
            )
        out.append(f"<title>{escape(node.key or 'entry')}: click for the runs here now</title></a>")
    out.append("</svg>")
    return mark_safe("".join(out))  # every dynamic value above is escaped or a number


def _first_column(row: list[MapNode]) -> int:
    return min(n.column for n in row)
