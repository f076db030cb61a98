"""Outbound delivery: one attempt of one queued delivery, the sweep's due list, and the upkeep of
the deliveries and destinations tables. Queuing deliveries is `integrations.lifecycle`'s;
handing them to Celery is `integrations.tasks`'."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.destinations import KINDS, SendOutcome, request_send
from integrations.models import Delivery, Destination, WebhookDelivery

logger = logging.getLogger(__name__)


def retry_schedule() -> list[float]:
    """Seconds to wait after each failed attempt; its length + 1 is the number of attempts."""
    return [float(s) for s in settings.INTEGRATIONS_RETRY_SCHEDULE]


def destination_send(*, destination: Destination, delivery_id: str, envelope: dict[str, Any]) -> SendOutcome:
    kind = KINDS[destination.kind]
    try:
        request = kind.build(
            url=destination.url,
            secret=destination.secret,
            delivery_id=delivery_id,
            envelope=envelope,
            sent_at=timezone.now(),
        )
    except Exception as error:  # e.g. a webhook secret that is not base64
        return SendOutcome(ok=False, error=f"could not build the request: {error!r}")
    return request_send(request, timeout=settings.INTEGRATIONS_DELIVERY_TIMEOUT_SECONDS)


def delivery_attempt(*, delivery_id: UUID | str) -> Delivery | None:
    """Try one due delivery once.

    1. Claim it with a conditional UPDATE (pending, due, no live lease): a second worker with the
       same job gets nothing and returns. A crashed worker's lease expires and the sweep retries.
    2. A paused destination: release it untouched; it goes out after the destination resumes.
    3. Send. A 2xx → delivered. Otherwise the next attempt is scheduled per
       INTEGRATIONS_RETRY_SCHEDULE, or, after the last attempt, the delivery is a dead letter.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.INTEGRATIONS_DELIVERY_TIMEOUT_SECONDS * 3 + 30)
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=lease)
    )
    delivery = Delivery.objects.select_related("destination").filter(pk=delivery_id).first()
    if delivery is None:  # its destination was deleted since the job was queued
        return None
    if not claimed:
        return delivery
    if delivery.destination.paused:
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=None)
        delivery.lease_until = None
        return delivery
    outcome = destination_send(
        destination=delivery.destination, delivery_id=str(delivery.pk), envelope=delivery.payload
    )
    schedule = retry_schedule()
    attempts = delivery.attempts + 1
    done = timezone.now()
    fields: dict[str, Any] = {
        "attempts": attempts,
        "lease_until": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "updated_at": done,
    }
    if outcome.ok:
        fields.update(status=Delivery.Status.DELIVERED, delivered_at=done)
    elif attempts > len(schedule):
        fields.update(status=Delivery.Status.DEAD, dead_at=done)
        logger.warning(
            "delivery %s to %s is a dead letter after %d attempts: %s",
            delivery.pk,
            delivery.destination.name,
            attempts,
            outcome.error,
        )
    else:
        fields.update(next_attempt_at=done + timedelta(seconds=schedule[attempts - 1]))
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    delivery.refresh_from_db()
    return delivery


def deliveries_due(*, limit: int = 500) -> list[UUID]:
    """Pending deliveries whose time has come and nobody holds, to active destinations."""
    now = timezone.now()
    return list(
        Delivery.objects.filter(
            status=Delivery.Status.PENDING, next_attempt_at__lte=now, destination__paused=False
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_forget(*, contact_id: UUID | str, email: str = "") -> int:
    """An erased contact: drop its deliveries not yet delivered (and any still kept), so no
    destination receives its personal data afterwards. Returns how many went."""
    about = Q(payload__data__contactId=str(contact_id))
    if email:
        about |= Q(payload__data__email=email) | Q(payload__data__to=email)
    deleted, _ = Delivery.objects.filter(about).delete()
    return deleted


def integrations_prune(*, batch: int = 5000) -> tuple[int, int]:
    """Delete delivered deliveries and received webhook records past their keep time, a batch at a
    time (dead letters and pending deliveries stay until replayed or delivered). Returns the counts.
    A webhook's events keep their idempotency keys, so a redelivery after this still changes nothing."""
    now = timezone.now()
    delivered_before = now - timedelta(days=settings.INTEGRATIONS_DELIVERED_KEEP_DAYS)
    received_before = now - timedelta(days=settings.WEBHOOK_DELIVERIES_KEEP_DAYS)
    old_deliveries = Delivery.objects.filter(
        status=Delivery.Status.DELIVERED, delivered_at__lt=delivered_before
    ).values_list("pk", flat=True)[:batch]
    deleted, _ = Delivery.objects.filter(pk__in=list(old_deliveries)).delete()
    old_webhooks = WebhookDelivery.objects.filter(received_at__lt=received_before).values_list(
        "pk", flat=True
    )[:batch]
    deleted_webhooks, _ = WebhookDelivery.objects.filter(pk__in=list(old_webhooks)).delete()
    return deleted, deleted_webhooks


def destinations_sync_from_settings() -> int:
    """Make the destinations listed in INTEGRATIONS_DESTINATIONS exist as listed (by name)."""
    wanted = settings.INTEGRATIONS_DESTINATIONS or []
    names = []
    for spec in wanted:
        kind = spec["kind"]
        if kind not in Destination.Kind.values:
            raise ValueError(
                f"destination {spec.get('name')!r}: kind must be one of {Destination.Kind.values}"
            )
        destination, _ = Destination.objects.update_or_create(
            name=spec["name"],
            defaults={
                "kind": kind,
                "url": spec["url"],
                "secret": spec.get("secret", ""),
                "event_types": list(spec.get("event_types", [])),
                "paused": bool(spec.get("paused", False)),
                "from_settings": True,
            },
        )
        names.append(destination.name)
    Destination.objects.filter(from_settings=True).exclude(name__in=names).delete()
    return len(names)
