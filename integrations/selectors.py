"""Reads for integrations: dead letters (the Operations alert reads these) and the sources page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q

from integrations.models import Delivery, WebhookDelivery, WebhookSourceState
from integrations.sources import sources_all


def dead_letters_count(*, since: datetime | None = None) -> int:
    dead = Delivery.objects.filter(status=Delivery.Status.DEAD)
    if since is not None:
        dead = dead.filter(dead_at__gte=since)
    return dead.count()


def dead_letters_by_destination(*, since: datetime | None = None) -> dict[str, int]:
    dead = Delivery.objects.filter(status=Delivery.Status.DEAD)
    if since is not None:
        dead = dead.filter(dead_at__gte=since)
    rows = dead.order_by().values("destination__name").annotate(n=Count("pk"))
    return {row["destination__name"]: row["n"] for row in rows}


@dataclass(frozen=True)
class SourceOverview:
    id: str
    name: str
    url: str
    configured: bool
    last_delivery_at: datetime | None
    accepted: int
    failed: int
    refused: int
    last_refused_at: datetime | None
    last_refused_reason: str
    recent: list[Any]


def sources_overview(*, recent: int = 5) -> list[SourceOverview]:
    """Every source with its URL, last delivery, failure counts and a few recent payloads."""
    stats = {
        row["source_id"]: row
        for row in WebhookDelivery.objects.order_by()
        .values("source_id")
        .annotate(
            last=Max("received_at"),
            accepted=Count("pk", filter=~Q(outcome=WebhookDelivery.Outcome.FAILED)),
            failed=Count("pk", filter=Q(outcome=WebhookDelivery.Outcome.FAILED)),
        )
    }
    refusals = {s.source_id: s for s in WebhookSourceState.objects.all()}
    secrets = settings.WEBHOOK_SECRETS or {}
    out = []
    for source in sources_all():
        row = stats.get(source.id, {})
        refused = refusals.get(source.id)
        explicit = getattr(source.verify, "secret", None)
        out.append(
            SourceOverview(
                id=source.id,
                name=source.name,
                url=f"{settings.PUBLIC_BASE_URL}/v1/webhooks/{source.id}",
                configured=bool(explicit or secrets.get(source.id)),
                last_delivery_at=row.get("last"),
                accepted=row.get("accepted", 0),
                failed=row.get("failed", 0),
                refused=refused.refused_count if refused else 0,
                last_refused_at=refused.last_refused_at if refused else None,
                last_refused_reason=refused.last_refused_reason if refused else "",
                recent=list(WebhookDelivery.objects.filter(source_id=source.id)[:recent]),
            )
        )
    return out
