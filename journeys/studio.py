"""Studio views for journeys: every registered journey, its numbers, its map, its on/off switch.

Journeys are code, not rows, so these are custom admin views (registered by hogsend.admin's site).
Pictures are inline SVG drawn here on the server: no JavaScript, nothing to load.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.admin import site as admin_site
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from journeys.actions import journey_enabled_set
from journeys.definition import EventRule, Journey
from journeys.journey_map import journey_map_parked_runs, journey_map_read
from journeys.models import EnrollmentSkip, JourneyRun, JourneySetting
from journeys.registry import registry
from journeys.studio_map import map_svg

Status = JourneyRun.Status
STATUS_ORDER = [Status.ACTIVE, Status.WAITING, Status.COMPLETED, Status.EXITED, Status.FAILED]
COLORS = {
    "parked": "#417690",
    Status.COMPLETED: "#2e7d32",
    Status.EXITED: "#e39b1b",
    Status.FAILED: "#c62828",
    "entered": "#417690",
}
CHART_DAYS = 30


# --- reads -------------------------------------------------------------------------------------


def rule_text(rule: EventRule) -> str:
    if not rule.where:
        return rule.event
    parts = []
    for condition in rule.where:
        data = condition.as_data()
        value = f" {data['value']!r}" if "value" in data else ""
        parts.append(f"{condition.property} {condition.operator}{value}")
    return f"{rule.event} where " + " and ".join(parts)


def journey_rules(journey: Journey) -> dict[str, Any]:
    return {
        "trigger": rule_text(journey.trigger),
        "exit_on": [rule_text(rule) for rule in journey.exit_on],
        "entry_limit": journey.entry_limit.value,
        "entry_period": str(journey.entry_period) if journey.entry_period else "",
        "suppress": str(journey.suppress) if journey.suppress.seconds else "",
        "category": journey.category,
    }


def journey_overrides() -> dict[str, bool]:
    return dict(JourneySetting.objects.values_list("journey_id", "enabled"))


def status_counts(*, journey_id: str | None = None) -> dict[str, dict[str, int]]:
    """Runs per journey and status, one grouped query (an index-only scan on run_journey_status_idx)."""
    runs = JourneyRun.objects.all()
    if journey_id is not None:
        runs = runs.filter(journey_id=journey_id)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_ORDER, 0))
    for row in runs.order_by().values("journey_id", "status").annotate(n=Count("pk")):
        counts[row["journey_id"]][row["status"]] = row["n"]
    return counts


def journey_daily(*, journey_id: str, days: int = CHART_DAYS) -> dict[str, list[int]]:
    """Entries, completions, exits and failures per day over the last `days` days."""
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    since = timezone.now() - timedelta(days=days)
    index = {first + timedelta(days=i): i for i in range(days)}
    series = {key: [0] * days for key in ("entered", Status.COMPLETED, Status.EXITED, Status.FAILED)}
    entered = (
        JourneyRun.objects.filter(journey_id=journey_id, entered_at__gte=since)
        .annotate(day=TruncDate("entered_at"))
        .order_by()
        .values("day")
        .annotate(n=Count("pk"))
    )
    for row in entered:
        if row["day"] in index:
            series["entered"][index[row["day"]]] = row["n"]
    ended = (
        JourneyRun.objects.filter(
            journey_id=journey_id,
            status__in=[Status.COMPLETED, Status.EXITED, Status.FAILED],
            ended_at__gte=since,
        )
        .annotate(day=TruncDate("ended_at"))
        .order_by()
        .values("day", "status")
        .annotate(n=Count("pk"))
    )
    for row in ended:
        if row["day"] in index:
            series[row["status"]][index[row["day"]]] = row["n"]
    series["days"] = [first.isoformat(), today.isoformat()]  # type: ignore[assignment]
    return series


def skip_counts(*, journey_id: str, days: int = CHART_DAYS) -> list[tuple[str, int]]:
    since = timezone.now() - timedelta(days=days)
    rows = (
        EnrollmentSkip.objects.filter(journey_id=journey_id, created_at__gte=since)
        .order_by()
        .values("reason")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    return [(row["reason"], row["n"]) for row in rows]


# --- pictures ----------------------------------------------------------------------------------


def daily_svg(series: dict[str, list[int]]) -> SafeString:
    """Entries, completions, exits and failures per day as lines."""
    width, height, left, bottom, top = 900, 200, 40, 24, 12
    keys = ["entered", Status.COMPLETED, Status.EXITED, Status.FAILED]
    days = len(series["entered"])
    biggest = max((max(series[k]) for k in keys), default=0) or 1
    inner_w, inner_h = width - left - 10, height - bottom - top

    def point(i: int, value: int) -> str:
        x = left + (inner_w * i / max(days - 1, 1))
        y = top + inner_h - inner_h * value / biggest
        return f"{x:.1f},{y:.1f}"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="studio-daily" role="img" width="100%" '
        f'style="max-width:{width}px" viewBox="0 0 {width} {height + 20}" aria-label="Runs per day">',
        "<style>text{font:11px sans-serif;fill:#555}</style>",
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - 10}" y2="{top + inner_h}" stroke="#ccc"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + inner_h}" stroke="#ccc"/>',
        f'<text x="4" y="{top + 8}">{biggest}</text><text x="4" y="{top + inner_h}">0</text>',
        f'<text x="{left}" y="{height - 6}">{escape(series["days"][0])}</text>',  # type: ignore[index]
        f'<text x="{width - 80}" y="{height - 6}">{escape(series["days"][1])}</text>',  # type: ignore[index]
    ]
    for key in keys:
        points = " ".join(point(i, v) for i, v in enumerate(series[key]))
        out.append(
            f'<polyline fill="none" stroke="{COLORS[key]}" stroke-width="2" points="{points}">'
            f"<title>{key} per day</title></polyline>"
        )
    lx = left
    for key, name in zip(keys, ("entries", "completions", "exits", "failures"), strict=True):
        out.append(f'<rect x="{lx}" y="{height + 4}" width="12" height="12" fill="{COLORS[key]}"/>')
        out.append(f'<text x="{lx + 16}" y="{height + 14}">{name} ({sum(series[key])})</text>')
        lx += 150
    out.append("</svg>")
    return mark_safe("".join(out))  # only numbers and escaped dates


# --- views -------------------------------------------------------------------------------------


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**admin_site.each_context(request), **extra}


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm("journeys.view_journeyrun"):
        raise PermissionDenied


def journeys_view(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    overrides = journey_overrides()
    counts = status_counts()
    runs_url = reverse("admin:journeys_journeyrun_changelist")
    rows = []
    for journey in registry.all():
        enabled = overrides.get(journey.id, journey.enabled)
        by_status = counts.get(journey.id, dict.fromkeys(STATUS_ORDER, 0))
        rows.append(
            {
                "journey": journey,
                "enabled": enabled,
                "overridden": journey.id in overrides,
                "rules": journey_rules(journey),
                "counts": [(s, by_status.get(s, 0)) for s in STATUS_ORDER],
                "total": sum(by_status.values()),
                "runs_url": f"{runs_url}?journey_id={journey.id}",
            }
        )
    return render(
        request,
        "studio/journeys.html",
        _context(request, title="Journeys", rows=rows, statuses=STATUS_ORDER),
    )


def journey_detail_view(request: HttpRequest, journey_id: str) -> HttpResponse:
    _require_view(request)
    journey = registry.get(journey_id)
    if journey is None:
        raise Http404(f"no journey {journey_id!r}")
    overrides = journey_overrides()
    runs_url = reverse("admin:journeys_journeyrun_changelist")
    by_status = status_counts(journey_id=journey.id).get(journey.id, dict.fromkeys(STATUS_ORDER, 0))
    journey_map = journey_map_read(journey_id=journey.id)
    selected = request.GET.get("node")
    selected_node = journey_map.node(selected) if selected is not None else None
    parked = (
        journey_map_parked_runs(journey_id=journey.id, node=selected_node.key)
        if selected_node is not None
        else []
    )
    series = journey_daily(journey_id=journey.id)
    return render(
        request,
        "studio/journey_detail.html",
        _context(
            request,
            title=journey.name,
            journey=journey,
            enabled=overrides.get(journey.id, journey.enabled),
            overridden=journey.id in overrides,
            rules=journey_rules(journey),
            counts=[(s, by_status.get(s, 0)) for s in STATUS_ORDER],
            runs_url=runs_url,
            map=map_svg(journey_map, journey_id=journey.id, selected=selected),
            journey_map=journey_map,
            selected=selected,
            selected_node=selected_node,
            parked=parked,
            daily=daily_svg(series),
            skips=skip_counts(journey_id=journey.id),
            can_change=request.user.has_perm("journeys.change_journeysetting"),
        ),
    )


@require_POST
def journey_set_enabled_view(request: HttpRequest, journey_id: str) -> HttpResponse:
    if not request.user.has_perm("journeys.change_journeysetting"):
        raise PermissionDenied
    journey = registry.get(journey_id)
    if journey is None:
        raise Http404(f"no journey {journey_id!r}")
    raw = request.POST.get("enabled", "")
    if raw not in ("0", "1"):
        messages.error(request, "Say enabled=1 or enabled=0.")
        return HttpResponseRedirect(reverse("admin:studio_journey", args=[journey.id]))
    enabled = raw == "1"
    journey_enabled_set(actor=request.user, journey_id=journey.id, enabled=enabled)
    messages.success(
        request,
        f"{journey.name} is now {'enabled' if enabled else 'disabled'}."
        + ("" if enabled else " New triggers are skipped as journey_disabled; live runs continue."),
    )
    target = request.POST.get("next") or reverse("admin:studio_journey", args=[journey.id])
    if not target.startswith("/admin/"):
        target = reverse("admin:studio_journey", args=[journey.id])
    return HttpResponseRedirect(target)
