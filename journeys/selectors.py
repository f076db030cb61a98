"""Reads a journey makes about the past: events, journey runs, emails, consent."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, Max, Q

from contacts.models import Contact, Event
from contacts.prepared import prepared_cursor
from journeys.conditions import Condition, all_match
from journeys.models import JourneyRun

SENT_STATUSES = ("sent", "delivered", "opened", "clicked")


def contact_is_subscribed(*, contact_id: UUID) -> bool:
    return Contact.objects.filter(pk=contact_id, unsubscribed_at__isnull=True).exists()


# A journey's `history.has_event`: one of the statements a run makes most, prepared (the query
# built through the ORM for each read cost the worker several times what the database spent).
_EVENT_COUNT_SQL = """
SELECT count(*) FROM contacts_event e JOIN contacts_contact c ON c.id = e.contact_id
WHERE c.user_id = %(user_id)s AND e.name = %(name)s
  AND e.occurred_at >= COALESCE(%(since)s::timestamptz, '-infinity')
"""


def event_count(*, user_id: str, event: str, since: datetime | None = None) -> int:
    """How many events of this name the contact has, since `since` if given (event time)."""
    with prepared_cursor() as cursor:
        cursor.execute(_EVENT_COUNT_SQL, {"user_id": user_id, "name": event, "since": since})
        return cursor.fetchone()[0]


def event_find(
    *, contact_id: UUID, name: str, where: tuple[Condition, ...], since: datetime, until: datetime
) -> dict[str, Any] | None:
    """The newest event of this contact in the window that satisfies `where`, as a wait result."""
    candidates = Event.objects.filter(
        contact_id=contact_id, name=name, occurred_at__gte=since, occurred_at__lte=until
    ).order_by("-occurred_at")[:50]
    for event in candidates:
        if all_match(where, event.properties):
            return event_as_wait_result(event)
    return None


def event_as_wait_result(event: Event) -> dict[str, Any]:
    return {
        "event_id": str(event.id),
        "properties": event.properties,
        "occurred_at": event.occurred_at.isoformat(),
    }


def journey_history(*, user_id: str, journey_id: str) -> dict[str, Any]:
    stats = JourneyRun.objects.filter(contact__user_id=user_id, journey_id=journey_id).aggregate(
        entries=Count("id"),
        completions=Count("id", filter=Q(status=JourneyRun.Status.COMPLETED)),
        last_completed=Max("ended_at", filter=Q(status=JourneyRun.Status.COMPLETED)),
    )
    return {
        "completed": stats["completions"] > 0,
        "last_completed_at": stats["last_completed"].isoformat() if stats["last_completed"] else None,
        "entry_count": stats["entries"],
    }


def email_history(*, email: str, template: str) -> dict[str, Any]:
    from emails.models import EmailLog

    stats = EmailLog.objects.filter(
        to_email__iexact=email, template=template, status__in=SENT_STATUSES
    ).aggregate(count=Count("id"), last=Max("sent_at"))
    return {
        "sent": stats["count"] > 0,
        "last_sent_at": stats["last"].isoformat() if stats["last"] else None,
        "count": stats["count"],
    }
