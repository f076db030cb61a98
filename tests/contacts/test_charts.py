"""The shared chart drawing (contacts.charts) and the Studio charts drawn with it: well-formed
SVG, text escaped once, numbers written alike."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from xml.etree import ElementTree

from django.utils.html import format_html

from contacts.charts import bar, chart_svg, dot, line, polyline, text, value_axis, whisker

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = 'a <b> & "c"'


def test_text_is_escaped_once_and_markup_passes_as_markup():
    assert text(10, 20.25, HOSTILE, anchor="end", size=12) == (
        '<text x="10" y="20.2" text-anchor="end" font-size="12">a &lt;b&gt; &amp; &quot;c&quot;</text>'
    )
    marked = format_html('{} <tspan class="q">({})</tspan>', "<5%", 3)
    assert text(1, 2, marked, css_class="q") == (
        '<text class="q" x="1" y="2">&lt;5% <tspan class="q">(3)</tspan></text>'
    )
    assert bar(0, 1.5, 10.04, 2, fill="#000", title=HOSTILE, css_class="bar-x") == (
        '<rect class="bar-x" x="0" y="1.5" width="10.0" height="2" fill="#000">'
        "<title>a &lt;b&gt; &amp; &quot;c&quot;</title></rect>"
    )


def test_a_chart_is_one_well_formed_svg_whatever_its_label():
    parts = [
        *value_axis(left=40, right=200, top=10, bottom=90, top_label="12%"),
        line(40, 50.0, 200, 50.0, stroke="#c62828", dashed=True, title="limit"),
        polyline([(40, 90), (120.55, 40.0)], stroke="#417690", width=2),
        dot(120.55, 40.0, r=3, fill="#417690", title="2026-11-02: 7"),
        *whisker(50, 80.0, 60),
    ]
    for fluid, max_width in ((True, None), (True, 900), (False, None)):
        svg = chart_svg(
            parts, css_class="c", label=HOSTILE, width=200, height=100, fluid=fluid, max_width=max_width
        )
        root = ElementTree.fromstring(str(svg))
        assert root.tag == f"{SVG}svg" and root.get("aria-label") == HOSTILE
        assert [e.tag.removeprefix(SVG) for e in root] == [
            "line",
            "text",
            "text",
            "line",
            "polyline",
            "circle",
        ] + ["line"] * 3
    assert root.get("width") == "200" and root.get("height") == "100"


def test_every_studio_chart_is_well_formed_svg():
    from audiences.charts import size_line
    from broadcasts.charts import report_bars
    from journeys.readouts import Group
    from journeys.studio_readout import readout_svg
    from operations import charts

    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(14)]
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    drawn = [
        report_bars(
            SimpleNamespace(delivered=9, opened=5, clicked=2, bounced=1, complained=0, unsubscribed=1),
            label=HOSTILE,
        ),
        charts.stacked_bars(
            [{"day": d, "counts": {"delivered": i, "odd <status>": 1}} for i, d in enumerate(days)],
            label=HOSTILE,
        ),
        charts.rate_lines(
            [{"day": d, "sent": i, "bounce_rate": i / 200} for i, d in enumerate(days)],
            series={"bounce_rate": ("#ef6c00", 0.04)},
            label=HOSTILE,
        ),
        charts.paired_bars(
            [{"day": d, "entered": 2 * i, "completed": i} for i, d in enumerate(days)],
            keys={"entered": "#417690", "completed": "#2e7d32"},
            label=HOSTILE,
        ),
        size_line(
            [SimpleNamespace(taken_at=t0 + dt.timedelta(hours=i), size=10 + i) for i in range(5)],
            label=HOSTILE,
        ),
        size_line([], label=HOSTILE),
        readout_svg(
            [(Group("plain <a>", 40, 6), "#417690"), (Group("empty", 0, 0), "#9e9e9e")], label=HOSTILE
        ),
    ]
    for svg in drawn:
        root = ElementTree.fromstring(str(svg))
        assert root.tag == f"{SVG}svg" and root.get("aria-label") == HOSTILE
    stacked = ElementTree.fromstring(str(drawn[1]))
    assert "odd <status>" in {t.text.split(" ", 2)[-1] for t in stacked.iter(f"{SVG}title")}
