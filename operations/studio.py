"""The Studio's Operations page: deliverability and journey flow per day, drawn from the database."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from journeys.registry import registry
from operations import charts, selectors
from operations.models import Alert

CHART_DAYS = (7, 30, 90)


def operations_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("emails.view_emaillog"):
        raise PermissionDenied
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in CHART_DAYS else 30
    sends = selectors.sends_per_day(days=days)
    rates = selectors.deliverability_per_day(days=days)
    journeys = sorted(j.id for j in registry.all())
    journey = request.GET.get("journey") if request.GET.get("journey") in journeys else None
    flow = selectors.journey_flow_per_day(days=days, journey_id=journey)
    sent = sum(r["sent"] for r in rates)
    return render(
        request,
        "studio/operations.html",
        {
            **admin.site.each_context(request),
            "title": "Operations",
            "days": days,
            "day_choices": CHART_DAYS,
            "journeys": journeys,
            "journey": journey,
            "sends_chart": charts.stacked_bars(sends, label=f"Sends per day by status, last {days} days"),
            "statuses": [(s, c) for s, c in charts.STATUS_COLOURS.items()],
            "rates_chart": charts.rate_lines(
                rates,
                series={
                    "bounce_rate": ("#ef6c00", settings.ALERT_BOUNCE_RATE),
                    "complaint_rate": ("#8e24aa", settings.ALERT_COMPLAINT_RATE),
                },
                label=f"Bounce and complaint rates per day, last {days} days",
            ),
            "flow_chart": charts.paired_bars(
                flow,
                keys={"entered": "#1565c0", "completed": "#2e7d32"},
                label=f"Entries and completions per day: {journey or 'all journeys'}",
            ),
            "sent": sent,
            "rates": [
                _rate("bounces", rates, "bounce_rate", sent, settings.ALERT_BOUNCE_RATE),
                _rate("complaints", rates, "complaint_rate", sent, settings.ALERT_COMPLAINT_RATE),
            ],
            "firing": list(Alert.objects.filter(status=Alert.Status.FIRING)[:50]),
        },
    )


def _rate(name: str, rows: list[dict], key: str, sent: int, threshold: float) -> dict:
    rate = sum(r[key] * r["sent"] for r in rows) / sent if sent else 0.0
    return {"name": name, "rate": f"{rate:.2%}", "limit": f"{threshold:.1%}", "over": rate > threshold}
