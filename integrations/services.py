"""Writes for integrations: inbound webhook deliveries, lifecycle emission and outbound delivery."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from integrations.catalog import event_type_get
from integrations.destinations import KINDS, SendOutcome, request_send
from integrations.models import Delivery, Destination, WebhookDelivery, WebhookSourceState
from integrations.sources import (
    Received,
    SourceNotConfigured,
    VerificationFailed,
    source_get,
)
from integrations.sources.base import json_body

logger = logging.getLogger(__name__)
WEBHOOK_EVENT_SOURCE = "webhook"  # Event.source of events that came in through a webhook source


# --- inbound -------------------------------------------------------------------------------------


@dataclass
class WebhookOutcome:
    status_code: int
    detail: str
    event_ids: list[str] = field(default_factory=list)
    duplicate: bool = False


def webhook_receive(*, source_id: str, body: bytes, headers: Mapping[str, str]) -> WebhookOutcome:
    """Verify one delivery and ingest what it maps to, once.

    1. Unknown source → 404. Unsigned, wrongly signed or stale → 401 (403 while the source has no
       secret); only a counter is kept, never the body.
    2. The delivery id (a provider header, a body field, or the body's hash) already handled → 200,
       nothing changes.
    3. Map it to events and, in one transaction, record the delivery and ingest every event
       through `contacts.services.event_ingest` (the pipeline behind POST /v1/events). An event the
       pipeline refuses undoes the whole delivery, which is recorded as failed (422) so the
       provider's retry can succeed once the cause is fixed.
    """
    from contacts.services import IngestError, event_ingest

    source = source_get(source_id)
    if source is None:
        return WebhookOutcome(404, f"no webhook source {source_id!r}")
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        header_id = source.verify(source_id=source_id, body=body, headers=headers)
    except SourceNotConfigured as error:
        _refusal_count(source_id, f"not configured: {error}")
        return WebhookOutcome(403, f"webhook source {source_id!r} is not configured: {error}")
    except VerificationFailed as error:
        _refusal_count(source_id, str(error))
        return WebhookOutcome(401, f"signature verification failed: {error}")

    sample, truncated = _sample(body)
    try:
        payload = json_body(body)
    except ValueError as error:
        _failure_record(source_id, header_id or "unreadable", sample, truncated, str(error))
        return WebhookOutcome(400, str(error))
    delivery_id = source.delivery_id(header_id=header_id, payload=payload, body=body)[:255]
    handled = WebhookDelivery.objects.filter(source_id=source_id, delivery_id=delivery_id).exclude(
        outcome=WebhookDelivery.Outcome.FAILED
    )
    if handled.exists():
        return WebhookOutcome(200, "already received", duplicate=True)
    received = Received(
        source_id=source_id, body=body, headers=headers, payload=payload, delivery_id=delivery_id
    )
    try:
        events = source.map(received)
    except Exception as error:  # a mapping bug or a shape the mapping did not expect
        logger.warning("webhook %s delivery %s could not be mapped: %r", source_id, delivery_id, error)
        _failure_record(source_id, delivery_id, sample, truncated, f"mapping failed: {error!r}")
        return WebhookOutcome(422, f"the {source_id} payload could not be mapped: {error}")
    try:
        with transaction.atomic():
            record = WebhookDelivery.objects.create(
                source_id=source_id,
                delivery_id=delivery_id,
                outcome=WebhookDelivery.Outcome.ACCEPTED if events else WebhookDelivery.Outcome.IGNORED,
                event_names=[e.name[:255] for e in events],
                body=sample,
                body_truncated=truncated,
            )
            ids = []
            for index, event in enumerate(events):
                result = event_ingest(
                    name=event.name,
                    user_id=event.user_id,
                    email=event.email,
                    properties=event.properties,
                    contact_properties=event.contact_properties,
                    occurred_at=event.occurred_at,
                    idempotency_key=event.idempotency_key or f"{source_id}:{delivery_id}:{index}",
                    source=WEBHOOK_EVENT_SOURCE,
                )
                ids.append(result.event.id)
            if ids:
                WebhookDelivery.objects.filter(pk=record.pk).update(event_ids=ids)
    except IntegrityError:  # the same delivery, handled by a concurrent request
        return WebhookOutcome(200, "already received", duplicate=True)
    except IngestError as error:
        _failure_record(source_id, delivery_id, sample, truncated, str(error))
        return WebhookOutcome(422, str(error))
    if not events:
        return WebhookOutcome(200, "verified; nothing to ingest for this event type")
    return WebhookOutcome(200, f"{len(ids)} event(s) ingested", event_ids=[str(i) for i in ids])


def _sample(body: bytes) -> tuple[str, bool]:
    limit = settings.WEBHOOK_BODY_SAMPLE_BYTES
    return body[:limit].decode("utf-8", errors="replace"), len(body) > limit


def _failure_record(source_id: str, delivery_id: str, sample: str, truncated: bool, error: str) -> None:
    WebhookDelivery.objects.create(
        source_id=source_id,
        delivery_id=delivery_id[:255],
        outcome=WebhookDelivery.Outcome.FAILED,
        error=error[:2000],
        body=sample,
        body_truncated=truncated,
    )


def _refusal_count(source_id: str, reason: str) -> None:
    now = timezone.now()
    updated = WebhookSourceState.objects.filter(source_id=source_id).update(
        refused_count=F("refused_count") + 1, last_refused_at=now, last_refused_reason=reason[:255]
    )
    if not updated:
        try:
            with transaction.atomic():
                WebhookSourceState.objects.create(
                    source_id=source_id,
                    refused_count=1,
                    last_refused_at=now,
                    last_refused_reason=reason[:255],
                )
        except IntegrityError:
            _refusal_count(source_id, reason)


# --- lifecycle emission ----------------------------------------------------------------------------

DataOrBuilder = dict[str, Any] | Callable[[], dict[str, Any] | None]


# Event-type sets nobody listened to, until a monotonic time: the hot paths (ingest, every email
# status change) skip the destinations query for a moment. Saving or deleting a destination clears
# it in this process; other processes see a new destination within NOBODY_LISTENS_SECONDS.
_nobody_listens: dict[frozenset[str], float] = {}
NOBODY_LISTENS_SECONDS = 1.0


def _listening(types: Iterable[str]) -> list[Destination]:
    """Unpaused and paused destinations alike (a paused one keeps its deliveries for later)."""
    key = frozenset(types)
    if _nobody_listens.get(key, 0.0) > time.monotonic():
        return []
    patterns = set()
    for event_type in key:
        patterns |= {event_type, event_type.split(".")[0] + ".*"}
    found = list(
        Destination.objects.filter(Q(event_types=[]) | Q(event_types__overlap=sorted(patterns))).only(
            "id", "event_types"
        )
    )
    if not found:
        _nobody_listens[key] = time.monotonic() + NOBODY_LISTENS_SECONDS
    return found


@receiver([post_save, post_delete], sender=Destination, dispatch_uid="integrations.destinations_changed")
def _destinations_changed(**kwargs: Any) -> None:
    _nobody_listens.clear()


def lifecycle_emit(*, type: str, data: DataOrBuilder, occurred_at: datetime | None = None) -> list[UUID]:
    """Queue one lifecycle event for every destination that wants it; returns the delivery ids.

    Only rows are written here (in the caller's transaction, so a rolled-back change emits
    nothing) and the Celery jobs are enqueued after commit, by id. `data` may be a function, called
    only when some destination listens, so code paths nobody subscribed to pay one small query.
    """
    return lifecycle_emit_many(events=[(type, data)], occurred_at=occurred_at)


def lifecycle_emit_many(
    *, events: Sequence[tuple[str, DataOrBuilder]], occurred_at: datetime | None = None
) -> list[UUID]:
    """`lifecycle_emit` for a set of events: one query for the destinations, one insert."""
    if not events:
        return []
    for event_type, _ in events:
        event_type_get(event_type)
    destinations = _listening({t for t, _ in events})
    if not destinations:
        return []
    now = timezone.now()
    at = (occurred_at or now).isoformat()
    rows = []
    for event_type, data in events:
        wanted = [d for d in destinations if d.wants(event_type)]
        if not wanted:
            continue
        body = data() if callable(data) else data
        if body is None:  # the builder found nothing to say (e.g. the row is gone)
            continue
        spec = event_type_get(event_type)
        event_id = uuid4()
        envelope = {
            "id": str(event_id),
            "type": event_type,
            "version": spec.version,
            "occurredAt": at,
            "data": body,
        }
        rows += [
            Delivery(
                destination_id=d.id,
                event_id=event_id,
                event_type=event_type,
                payload=envelope,
                next_attempt_at=now,
            )
            for d in wanted
        ]
    Delivery.objects.bulk_create(rows)
    ids = [row.id for row in rows]
    if ids:
        transaction.on_commit(lambda: deliveries_enqueue(delivery_ids=ids))
    return ids


def deliveries_enqueue(*, delivery_ids: Sequence[UUID | str]) -> None:
    """Hand deliveries to Celery. A broker that is down loses nothing: the sweep finds them."""
    from integrations.tasks import delivery_attempt_task

    for delivery_id in delivery_ids:
        try:
            # No publish retries: a broker that is down must not hold up the caller's request.
            delivery_attempt_task.apply_async(args=[str(delivery_id)], retry=False)
        except Exception as error:
            logger.warning("could not enqueue delivery %s (the sweep will): %s", delivery_id, error)
            return


def operator_alert_send(*, title: str, text: str, payload: dict[str, Any] | None = None) -> list[UUID]:
    """An operations alert to every destination that takes `operator.alert` (Slack shows the text)."""
    return lifecycle_emit(type="operator.alert", data={"title": title, "text": text, "alert": payload or {}})


def notify_destinations(*, text: str, title: str = "Hogsend") -> list[UUID]:
    """A plain message to Slack-style destinations, as an `operator.alert`."""
    return operator_alert_send(title=title, text=text)


# --- delivery --------------------------------------------------------------------------------------


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


def deliveries_replay(*, delivery_ids: Iterable[UUID | str], actor: Any = None) -> int:
    """Send dead letters again from a fresh attempt count (an operator action, audited)."""
    from contacts.services import audit_record

    ids = [str(i) for i in delivery_ids]
    with transaction.atomic():
        replayed = list(
            Delivery.objects.select_for_update()
            .filter(pk__in=ids, status=Delivery.Status.DEAD)
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=replayed).update(
            status=Delivery.Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            dead_at=None,
            lease_until=None,
            updated_at=timezone.now(),
        )
        if replayed:
            audit_record(
                actor=actor,
                action="delivery.replay",
                target_type="delivery",
                target_id=str(replayed[0]) if len(replayed) == 1 else f"{len(replayed)} deliveries",
                detail={"delivery_ids": [str(i) for i in replayed]},
            )
            transaction.on_commit(lambda: deliveries_enqueue(delivery_ids=replayed))
    return len(replayed)


def destination_test_send(*, destination: Destination, actor: Any = None) -> SendOutcome:
    """Send one `destination.test` event now, whatever the filter or pause; nothing is queued or
    retried, so a failing test never becomes a dead letter. Audited."""
    from contacts.services import audit_record

    spec = event_type_get("destination.test")
    event_id = uuid4()
    envelope = {
        "id": str(event_id),
        "type": spec.type,
        "version": spec.version,
        "occurredAt": timezone.now().isoformat(),
        "data": {"destination": destination.name, "message": "If you can read this, it works."},
    }
    outcome = destination_send(destination=destination, delivery_id=str(event_id), envelope=envelope)
    audit_record(
        actor=actor,
        action="destination.test_send",
        target_type="destination",
        target_id=str(destination.pk),
        detail={"ok": outcome.ok, "status_code": outcome.status_code, "error": outcome.error[:500]},
    )
    return outcome


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
