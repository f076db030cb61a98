"""Inbound webhooks: verify a provider's delivery and ingest the events it maps to, once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import TypeAdapter

from contacts.fields import EmailAddress
from contacts.ingest import EventDraft, IngestError, IngestResult, events_ingest
from contacts.schemas import json_problem, text_problem
from integrations.models import WebhookDelivery, WebhookSourceState
from integrations.sources import (
    Received,
    SourceNotConfigured,
    VerificationFailed,
    WebhookEvent,
    WebhookSkip,
    source_get,
)
from integrations.sources.base import json_body

logger = logging.getLogger(__name__)
EMAIL_ADDRESS: TypeAdapter[str] = TypeAdapter(EmailAddress)
WEBHOOK_EVENT_SOURCE = "webhook"  # Event.source of events that came in through a webhook source


@dataclass
class WebhookOutcome:
    status_code: int
    detail: str
    event_ids: list[str] = field(default_factory=list)
    duplicate: bool = False
    # One answer per message when a delivery carries several (a Segment batch).
    results: list[dict[str, Any]] = field(default_factory=list)


def webhook_receive(*, source_id: str, body: bytes, headers: Mapping[str, str]) -> WebhookOutcome:
    """Verify one delivery and ingest what it maps to, once.

    1. Unknown source → 404. Unsigned, wrongly signed or stale → 401 (403 while the source has no
       secret); only a counter is kept, never the body.
    2. The delivery id (a provider header, a body field, or the body's hash) already handled → 200,
       nothing changes.
    3. Map it to events (and messages that become none) and check each event as POST /v1/events
       would; in one transaction record the delivery and ingest the events set-based through
       `contacts.ingest.events_ingest`. A message already ingested (its own id) is a duplicate; one
       the pipeline refuses is answered with the reason and the others are kept; if every event
       is refused the delivery is recorded as failed (422), so the provider's retry can succeed
       once the cause is fixed.
    A sender is never answered with internal error text: what it sent is described, and the
    detail of a mapping failure is kept in the delivery's record for the operator.
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
    delivery_id = _storable(source.delivery_id(header_id=header_id, payload=payload, body=body))[:255]
    handled = WebhookDelivery.objects.filter(source_id=source_id, delivery_id=delivery_id).exclude(
        outcome=WebhookDelivery.Outcome.FAILED
    )
    if handled.exists():
        return WebhookOutcome(200, "already received", duplicate=True)
    received = Received(
        source_id=source_id, body=body, headers=headers, payload=payload, delivery_id=delivery_id
    )
    try:
        mapped = source.map(received)
    except Exception as error:  # a mapping bug or a shape the mapping did not expect
        logger.warning("webhook %s delivery %s could not be mapped: %r", source_id, delivery_id, error)
        _failure_record(source_id, delivery_id, sample, truncated, f"mapping failed: {error!r}")
        return WebhookOutcome(
            422,
            f"the {source_id} payload is not in the shape this source reads (a JSON {_json_kind(payload)} "
            "body); send the provider's own delivery unchanged",
        )
    events = [m for m in mapped if isinstance(m, WebhookEvent)]
    skips = [m for m in mapped if isinstance(m, WebhookSkip)]
    drafts = [_draft(e, default_key=f"{source_id}:{delivery_id}:{i}") for i, e in enumerate(events)]
    try:
        with transaction.atomic():
            record = WebhookDelivery.objects.create(
                source_id=source_id,
                delivery_id=delivery_id,
                outcome=WebhookDelivery.Outcome.ACCEPTED if events else WebhookDelivery.Outcome.IGNORED,
                event_names=[_storable(e.name)[:255] for e in events],
                body=sample,
                body_truncated=truncated,
            )
            checked = [_problem(d) for d in drafts]
            fresh = [d for d, problem in zip(drafts, checked, strict=True) if problem is None]
            stored = iter(events_ingest(drafts=fresh, source=WEBHOOK_EVENT_SOURCE) if fresh else [])
            outcomes = [problem or next(stored) for problem in checked]
            if events and all(isinstance(o, IngestError) for o in outcomes):
                raise _AllRefused(outcomes)
            ids = [o.event.id for o in outcomes if isinstance(o, IngestResult)]
            refused = [str(o) for o in outcomes if isinstance(o, IngestError)]
            WebhookDelivery.objects.filter(pk=record.pk).update(
                event_ids=ids, error=_storable("; ".join(refused))[:2000]
            )
    except IntegrityError:  # the same delivery, handled by a concurrent request
        return WebhookOutcome(200, "already received", duplicate=True)
    except _AllRefused as refusal:
        detail = "; ".join(str(o) for o in refusal.outcomes)
        _failure_record(source_id, delivery_id, sample, truncated, detail)
        return WebhookOutcome(422, detail[:2000], results=_results(events, refusal.outcomes, skips))
    results = _results(events, outcomes, skips) if len(mapped) > 1 or isinstance(payload, list) else []
    if not events:
        return WebhookOutcome(200, "verified; nothing to ingest for this delivery", results=results)
    return WebhookOutcome(
        200, f"{len(ids)} event(s) ingested", event_ids=[str(i) for i in ids], results=results
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), "value")


class _AllRefused(Exception):
    def __init__(self, outcomes: list[IngestResult | IngestError]) -> None:
        self.outcomes = outcomes


def _draft(event: WebhookEvent, *, default_key: str) -> EventDraft:
    email = None
    if event.email:
        try:
            email = EMAIL_ADDRESS.validate_python(event.email)
        except ValueError:  # a provider's malformed address: keep the event, not the address
            email = None
    return EventDraft(
        name=event.name,
        user_id=event.user_id,
        email=email,
        properties=event.properties if isinstance(event.properties, dict) else {},
        contact_properties=event.contact_properties if isinstance(event.contact_properties, dict) else {},
        occurred_at=event.occurred_at,
        idempotency_key=event.idempotency_key or default_key,
    )


def _problem(draft: EventDraft) -> IngestError | None:
    """What POST /v1/events' schema would refuse in this event, so the database never has to."""
    for label, value in (("name", draft.name), ("userId", draft.user_id)):
        problem = text_problem(value) if isinstance(value, str) else "is not text"
        if problem:
            return IngestError(f"{label} {problem}")
    for label, value in (("properties", draft.properties), ("contactProperties", draft.contact_properties)):
        problem = json_problem(value, label)
        if problem:
            return IngestError(problem)
    return None


def _results(
    events: list[WebhookEvent], outcomes: list[IngestResult | IngestError], skips: list[WebhookSkip]
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for index, (event, outcome) in enumerate(zip(events, outcomes, strict=True)):
        message_id = event.message_id or f"#{index}"
        if isinstance(outcome, IngestError):
            answers.append({"messageId": message_id, "status": "refused", "detail": str(outcome)})
        else:
            answers.append(
                {
                    "messageId": message_id,
                    "status": "accepted" if outcome.created else "duplicate",
                    "eventId": str(outcome.event.id),
                }
            )
    answers += [{"messageId": s.message_id, "status": "ignored", "detail": s.reason} for s in skips]
    return answers


def _storable(text: str) -> str:
    """Text for the delivery's own record: a NUL or a lone surrogate shown as U+FFFD, so a
    sender's bytes can always be recorded (the events themselves are checked, never altered)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", errors="replace").decode("utf-8")


def _sample(body: bytes) -> tuple[str, bool]:
    limit = settings.WEBHOOK_BODY_SAMPLE_BYTES
    return _storable(body[:limit].decode("utf-8", errors="replace")), len(body) > limit


def _failure_record(source_id: str, delivery_id: str, sample: str, truncated: bool, error: str) -> None:
    WebhookDelivery.objects.create(
        source_id=source_id,
        delivery_id=_storable(delivery_id)[:255],
        outcome=WebhookDelivery.Outcome.FAILED,
        error=_storable(error)[:2000],
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
