"""Inbound webhooks: verify a provider's delivery and ingest the events it maps to, once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from contacts.ingest import IngestError, event_ingest
from integrations.models import WebhookDelivery, WebhookSourceState
from integrations.sources import (
    Received,
    SourceNotConfigured,
    VerificationFailed,
    source_get,
)
from integrations.sources.base import json_body

logger = logging.getLogger(__name__)
WEBHOOK_EVENT_SOURCE = "webhook"  # Event.source of events that came in through a webhook source


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
       through `contacts.ingest.event_ingest` (the pipeline behind POST /v1/events). An event the
       pipeline refuses undoes the whole delivery, which is recorded as failed (422) so the
       provider's retry can succeed once the cause is fixed.
    """
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
