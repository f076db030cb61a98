"""One-line hooks the other apps call where a lifecycle transition happens.

Each takes ids (never model instances: the row is read again only if some destination listens)
and goes through `services.lifecycle_emit`, which writes delivery rows in the caller's transaction
and enqueues the jobs after commit. None of them ever calls a destination.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from integrations.services import lifecycle_emit, lifecycle_emit_many


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def contact_data(contact: Any) -> dict[str, Any]:
    return {
        "contactId": str(contact.id),
        "userId": contact.user_id,
        "email": contact.email,
        "subscribed": contact.unsubscribed_at is None,
        "properties": contact.properties,
    }


def _contact_builder(contact_id: UUID | str):
    def build() -> dict[str, Any] | None:
        from contacts.models import Contact

        contact = Contact.objects.filter(pk=contact_id).first()
        return contact_data(contact) if contact is not None else None

    return build


def contact_emit(*, type: str, contact_id: UUID | str) -> None:
    """contact.created / updated / unsubscribed / resubscribed."""
    lifecycle_emit(type=type, data=_contact_builder(contact_id))


def contacts_upserted_emit(*, contacts: Iterable[Any], now: datetime) -> None:
    """After a set-based upsert (ingest): rows created at `now` are new, rows written at `now`
    otherwise changed; the rest were only read. One query when nobody listens."""
    events = []
    for contact in contacts:
        if contact.created_at == now:
            events.append(("contact.created", contact_data(contact)))
        elif contact.updated_at == now:
            events.append(("contact.updated", contact_data(contact)))
    lifecycle_emit_many(events=events)


def suppression_emit(*, email: str, reason: str, note: str = "") -> None:
    lifecycle_emit(type="contact.suppressed", data={"email": email, "reason": reason, "note": note})


def run_emit(*, type: str, run_id: UUID | str) -> None:
    """journey.entered / completed / exited / failed."""

    def build() -> dict[str, Any] | None:
        from journeys.models import JourneyRun

        run = JourneyRun.objects.select_related("contact").filter(pk=run_id).first()
        if run is None:
            return None
        return {
            "runId": str(run.id),
            "journeyId": run.journey_id,
            "contactId": str(run.contact_id),
            "userId": run.contact.user_id,
            "status": run.status,
            "enteredAt": _iso(run.entered_at),
            "endedAt": _iso(run.ended_at),
            "reason": run.exit_reason or (run.error.splitlines()[0][:500] if run.error else ""),
        }

    lifecycle_emit(type=type, data=build)


def email_emit(*, email_id: UUID | str, status: str) -> None:
    """email.<status> for every status the email log reaches (queued, sent, ..., suppressed)."""

    def build() -> dict[str, Any] | None:
        from emails.models import EmailLog

        log = EmailLog.objects.select_related("contact", "run").filter(pk=email_id).first()
        if log is None:
            return None
        return {
            "emailId": str(log.id),
            "to": log.to_email,
            "contactId": str(log.contact_id) if log.contact_id else None,
            "userId": log.contact.user_id if log.contact else None,
            "template": log.template,
            "subject": log.subject,
            "category": log.category,
            "status": status,
            "reason": log.status_reason,
            "runId": str(log.run_id) if log.run_id else None,
            "journeyId": log.run.journey_id if log.run else None,
        }

    lifecycle_emit(type=f"email.{status}", data=build)
