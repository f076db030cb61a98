"""Lead alerts: the full operator-alert task pattern.

A `lead.captured` event (a demo request, a pricing form) pages the sales inbox. The alert names
the person from the contacts table — name, company, recent activity — not from whatever the
event carried. It waits a short grace window first: free text that follows the capture (the
visitor's message from a chat widget or the form's second step, sent as `lead.context`) is
folded into that one alert instead of paging twice. Context arriving after the window is its own,
shorter follow-up alert.

The window is decided by when Hogsend received each event, so the two tasks agree on every
event: context received within `LEAD_GRACE` of a capture belongs to the capture's alert, anything
later to a follow-up.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings

from contacts.models import Event
from journeys.context import db_call
from journeys.definition import durable_task
from journeys.durations import journey_time, minutes
from journeys.keys import bounded_key
from journeys.send import send_operator_email
from journeys.shipped.constants import Events, Templates
from journeys.shipped.operator_alerts import contact_label, contact_profile_read
from journeys.task_context import task_sleep

LEAD_GRACE = minutes(2)
MAX_CONTEXT = 10


def _text(event: Event) -> str:
    return str(event.properties.get("text") or "")[:2000]


def lead_read(*, event_id: UUID | str) -> dict[str, Any] | None:
    """The capture, the context folded into it, and who the lead is. None if the event is gone."""
    captured = Event.objects.select_related("contact").filter(pk=event_id).first()
    if captured is None or captured.contact.erased_at is not None:
        return None
    closes = captured.received_at + journey_time(LEAD_GRACE)
    context = Event.objects.filter(
        contact_id=captured.contact_id,
        name=Events.LEAD_CONTEXT,
        received_at__gte=captured.received_at,
        received_at__lt=closes,
    ).order_by("received_at", "id")[:MAX_CONTEXT]
    return {
        "contact": contact_profile_read(user_id=captured.contact.user_id, exclude=(Events.LEAD_CONTEXT,)),
        "lead": {str(k): v for k, v in captured.properties.items()},
        "context": [_text(e) for e in context if _text(e)],
    }


def lead_context_read(*, event_id: UUID | str) -> dict[str, Any] | None:
    """A context event, unless a capture's alert took it in (or the event is gone)."""
    event = Event.objects.select_related("contact").filter(pk=event_id).first()
    if event is None or event.contact.erased_at is not None:
        return None
    folded = Event.objects.filter(
        contact_id=event.contact_id,
        name=Events.LEAD_CAPTURED,
        received_at__lte=event.received_at,
        received_at__gt=event.received_at - journey_time(LEAD_GRACE),
    ).exists()
    if folded:
        return {"folded": True}
    return {
        "folded": False,
        "contact": contact_profile_read(user_id=event.contact.user_id, exclude=(Events.LEAD_CONTEXT,)),
        "text": _text(event),
    }


@durable_task(name="lead-alert", on_events=[Events.LEAD_CAPTURED], retries=2, timeout=minutes(15))
async def lead_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """Page sales about a new lead, with any context that arrived within the grace window."""
    event_id = payload.get("event_id") or ""
    if not event_id:
        return {"status": "skipped", "reason": "missing_event_id"}
    await task_sleep(LEAD_GRACE, label="lead-grace")
    lead = await db_call(lead_read, event_id=event_id)
    if lead is None:
        return {"status": "skipped", "reason": "event_gone"}
    result = await send_operator_email(
        to=settings.LEAD_ALERT_EMAIL,
        template=Templates.TRANSACTIONAL_LEAD_ALERT,
        subject=f"[Lead] {contact_label(lead['contact'])}",
        props={**lead, "follow_up": False},
        # Keyed by the capture: a retry, or the engine delivering it twice, pages once.
        idempotency_key=bounded_key("lead-alert", event_id),
    )
    return {"status": result.status, "context": len(lead["context"])}


@durable_task(name="lead-context-alert", on_events=[Events.LEAD_CONTEXT], retries=2, timeout=minutes(15))
async def lead_context_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """Context the lead alert could not fold in (it came later): a short follow-up alert."""
    event_id = payload.get("event_id") or ""
    if not event_id:
        return {"status": "skipped", "reason": "missing_event_id"}
    found = await db_call(lead_context_read, event_id=event_id)
    if found is None:
        return {"status": "skipped", "reason": "event_gone"}
    if found["folded"]:
        return {"status": "folded"}
    if not found["text"]:
        return {"status": "skipped", "reason": "no_text"}
    result = await send_operator_email(
        to=settings.LEAD_ALERT_EMAIL,
        template=Templates.TRANSACTIONAL_LEAD_ALERT,
        subject=f"[Lead — more context] {contact_label(found['contact'])}",
        props={"contact": found["contact"], "lead": {}, "context": [found["text"]], "follow_up": True},
        idempotency_key=bounded_key("lead-context-alert", event_id),
    )
    return {"status": result.status}
