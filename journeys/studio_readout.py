"""The Studio's readout page of a journey: conversion per arm and against the holdout, per version.

The chart is inline SVG (no JavaScript), laid out here and drawn with contacts.charts: a bar per
group at its conversion rate, with its 95 % interval (Wilson) as a whisker; the numbers come from
journeys.readouts.
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.contrib.admin import site as admin_site
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from contacts.charts import bar, chart_svg, line, text, whisker
from journeys.readouts import Comparison, Group, Readout, journey_readout, min_conversions
from journeys.registry import registry

_VERSION = re.compile(r"^[0-9a-f]{12}$")
BAR_COLOURS = ["#417690", "#2e7d32", "#8e44ad", "#e39b1b", "#00838f", "#6d4c41"]
HOLDOUT_COLOUR = "#9e9e9e"
CONTROL_GROUP_COLOUR = "#bdbdbd"


def readout_svg(groups: list[tuple[Group, str]], *, label: str) -> SafeString:
    """Horizontal bars: each group's conversion rate, its 95 % interval as a whisker, and its counts."""
    row_h, left, right, top = 34, 150, 230, 10
    width = 900
    plot_w = width - left - right
    top_rate = max([(g.rate_interval() or (0, 0))[1] for g, _ in groups] + [0.01])
    axis_max = min(1.0, math.ceil(top_rate * 1.05 / 0.05) * 0.05)  # a round axis: 5 % steps
    scale = plot_w / axis_max
    height = top + row_h * len(groups) + 24
    out = [line(left, top, left, height - 22)]
    for i, (group, colour) in enumerate(groups):
        y = top + i * row_h
        rate = group.rate or 0.0
        out.append(text(left - 8, y + 20, group.name, anchor="end"))
        title = f"{group.name}: {group.conversions} of {group.entrants} converted"
        out.append(bar(left, y + 6, float(rate * scale), 20, fill=colour, title=title))
        interval = group.rate_interval()
        if interval is not None:
            out += whisker(left + interval[0] * scale, left + interval[1] * scale, y + 16)
        shown = f"{rate:.1%}" if group.entrants else "—"
        counts = format_html(
            '{} <tspan class="q">({} / {})</tspan>', shown, group.conversions, group.entrants
        )
        out.append(text(left + plot_w + 12, y + 20, counts))
    for fraction in (0.0, 0.5, 1.0):
        out.append(
            text(
                left + plot_w * fraction,
                height - 6,
                f"{fraction * axis_max * 100:g}%",
                anchor="middle",
                css_class="q",
            )
        )
    return chart_svg(
        out,
        css_class="readout-chart",
        label=label,
        width=width,
        height=height,
        max_width=width,
        style="text{font:12px sans-serif;fill:#333}.q{fill:#777}",
    )


def readout_chart(readout: Readout) -> list[dict[str, Any]]:
    """One chart per experiment key (its arms, the holdout and the control group), or one of
    treated vs holdout (and the control group)."""
    untreated = [(readout.holdout, HOLDOUT_COLOUR)] if readout.holdout is not None else []
    if readout.control_group is not None:
        untreated.append((readout.control_group, CONTROL_GROUP_COLOUR))
    charts = []
    for experiment in readout.experiments:
        groups = [(arm, BAR_COLOURS[i % len(BAR_COLOURS)]) for i, arm in enumerate(experiment.arms)]
        groups += untreated
        charts.append(
            {
                "key": experiment.key,
                "svg": readout_svg(groups, label=f"Conversion by arm of {experiment.key}"),
            }
        )
    if not readout.experiments and untreated:
        groups = [(readout.treated, BAR_COLOURS[0]), *untreated]
        charts.append({"key": "", "svg": readout_svg(groups, label="Conversion, treated against holdout")})
    return charts


def _pp(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f} pp"


def comparison_row(comparison: Comparison) -> dict[str, Any]:
    """A comparison in an operator's words: percentage points, the interval, the p-value."""
    has_interval = comparison.ci_low is not None and comparison.ci_high is not None
    return {
        "group": comparison.group,
        "against": comparison.against,
        "difference": _pp(comparison.difference),
        "interval": f"{_pp(comparison.ci_low)} to {_pp(comparison.ci_high)}" if has_interval else "—",
        "p_value": "—" if comparison.p_value is None else f"{comparison.p_value:.4f}",
        "conclusive": comparison.conclusive,
        "significant": comparison.conclusive and (comparison.p_value or 1) < 0.05,
        "warning": comparison.warning,
    }


def group_row(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "entrants": group.entrants,
        "conversions": group.conversions,
        "rate": "—" if group.rate is None else f"{group.rate:.1%}",
    }


def journey_readout_view(request: HttpRequest, journey_id: str) -> HttpResponse:
    if not request.user.has_perm("journeys.view_journeyrun"):
        raise PermissionDenied
    journey = registry.get(journey_id)
    if journey is None:
        raise Http404(f"no journey {journey_id!r}")
    version = request.GET.get("version") or None
    error = ""
    if version is not None and not _VERSION.match(version):
        error, version = f"{version!r} is not a version (12 hex digits); showing every version.", None
    readout = journey_readout(journey=journey, version=version)
    comparisons = [c for e in readout.experiments for c in e.comparisons]
    if readout.against_holdout is not None:
        comparisons.insert(0, readout.against_holdout)
    return render(
        request,
        "studio/journey_readout.html",
        {
            **admin_site.each_context(request),
            "title": f"Readout of {journey.name}",
            "journey": journey,
            "readout": readout,
            "version": version,
            "version_error": error,
            "charts": readout_chart(readout),
            "comparisons": [comparison_row(c) for c in comparisons],
            "experiments": [
                {"key": e.key, "arms": [group_row(a) for a in e.arms]} for e in readout.experiments
            ],
            "overall": [
                group_row(g)
                for g in (readout.treated, readout.holdout, readout.control_group)
                if g is not None
            ],
            "runs_url": reverse("admin:journeys_journeyrun_changelist"),
            "min_conversions": min_conversions(),
            "inconclusive": sum(1 for c in comparisons if c.warning),
        },
    )
