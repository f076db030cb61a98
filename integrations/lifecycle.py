"""Lifecycle emission: every lifecycle event for the destinations that want it, as delivery rows.

The apps below announce their transitions through the seam `contacts.lifecycle`; `Announcer` is
what this app installs there at start-up. Each hook takes ids (never model instances: the row is
read again only if some destination listens) and goes through `lifecycle_emit`, which writes
delivery rows in the caller's transaction and enqueues the jobs after commit. Nothing here ever
calls a destination (that is `integrations.outbound`, from a Celery job).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from contacts.models import Contact
from emails.models import EmailLog
from integrations.catalog import event_type_get
from integrations.models import Delivery, Destination
from integrations.tasks import deliveries_enqueue
from journeys.models import JourneyRun

logger = logging.getLogger(__name__)

DataOrBuilder = dict[str, Any] | Callable[[], dict[str, Any] | None]


# Event-type sets nobody listened to, until a monotonic time: the hot paths (ingest, every email
# status change) skip the destinations query for a moment. Saving or deleting a destination clears
# it in this process; other processes see a new destination within NOBODY_LISTENS_SECONDS. With no
# destination at all (the common case) one query answers every type for that moment, so a journey
# start, which announces three transitions, pays for one.
_nobody_listens: dict[frozenset[str], float] = {}
_NO_DESTINATIONS: frozenset[str] = frozenset({"*"})
NOBODY_LISTENS_SECONDS = 1.0


def _listening(types: Iterable[str]) -> list[Destination]:
    """Unpaused and paused destinations alike (a paused one keeps its deliveries for later)."""
    key = frozenset(types)
    now = time.monotonic()
    if _nobody_listens.get(_NO_DESTINATIONS, 0.0) > now or _nobody_listens.get(key, 0.0) > now:
        return []
    # Every destination's types (a handful of rows): knowing there is none at all answers the
    # other types too.
    everyone = list(Destination.objects.only("id", "event_types"))
    if not everyone:
        _nobody_listens[_NO_DESTINATIONS] = now + NOBODY_LISTENS_SECONDS
        return []
    found = [d for d in everyone if any(d.wants(t) for t in key)]
    if not found:
        _nobody_listens[key] = now + NOBODY_LISTENS_SECONDS
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


def operator_alert_send(*, title: str, text: str, payload: dict[str, Any] | None = None) -> list[UUID]:
    """An operations alert to every destination that takes `operator.alert` (Slack shows the text)."""
    return lifecycle_emit(type="operator.alert", data={"title": title, "text": text, "alert": payload or {}})


def notify_destinations(*, text: str, title: str = "Hogsend") -> list[UUID]:
    """A plain message to Slack-style destinations, as an `operator.alert`."""
    return operator_alert_send(title=title, text=text)


# --- what the apps announce -------------------------------------------------------------------


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
        contact = Contact.objects.filter(pk=contact_id).first()
        return contact_data(contact) if contact is not None else None

    return build


def contact_emit(*, type: str, contact_id: UUID | str) -> None:
    """contact.created / updated / unsubscribed / resubscribed."""
    lifecycle_emit(type=type, data=_contact_builder(contact_id))


CONTACT_UPSERT_TYPES = frozenset({"contact.created", "contact.updated"})


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
            "heldUntil": log.held_until.isoformat() if status == "held" and log.held_until else None,
            "runId": str(log.run_id) if log.run_id else None,
            "journeyId": log.run.journey_id if log.run else None,
        }

    lifecycle_emit(type=f"email.{status}", data=build)


class Announcer:
    """The lifecycle seam's implementation (`contacts.lifecycle.Lifecycle`)."""

    def contact(self, *, type: str, contact_id: UUID | str) -> None:
        contact_emit(type=type, contact_id=contact_id)

    def contacts_upserted(self, *, contacts: Iterable[Any], now: datetime) -> None:
        contacts_upserted_emit(contacts=contacts, now=now)

    def contacts_listened(self) -> bool:
        return bool(_listening(CONTACT_UPSERT_TYPES))

    def suppression(self, *, email: str, reason: str, note: str = "") -> None:
        suppression_emit(email=email, reason=reason, note=note)

    def run(self, *, type: str, run_id: UUID | str) -> None:
        run_emit(type=type, run_id=run_id)

    def email(self, *, email_id: UUID | str, status: str) -> None:
        email_emit(email_id=email_id, status=status)


def segment_changes_emit(*, changes: Iterable[Any], now: datetime) -> None:
    """segment.entered / segment.exited, as audiences decides them (one query when nobody listens)."""
    from audiences.segments import registry

    events = []
    for change in changes:
        segment = registry.get(change.segment_id)
        events.append(
            (
                "segment.entered" if change.entered else "segment.exited",
                {
                    "segmentId": change.segment_id,
                    "segmentName": segment.name if segment else change.segment_id,
                    "contactId": str(change.contact_id),
                    "userId": change.user_id,
                },
            )
        )
    lifecycle_emit_many(events=events, occurred_at=now)
