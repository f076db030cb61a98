"""Writes for contacts, events and API keys: the ingest pipeline lives here."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts.models import ApiKey, Contact, Event


class IngestError(ValueError):
    """Input the pipeline cannot store; the message says what to fix."""


@dataclass
class IngestResult:
    event: Event
    contact: Contact
    exited_run_ids: list[UUID] = field(default_factory=list)
    created: bool = True


def contact_upsert(
    *, user_id: str, email: str | None = None, properties: dict[str, Any] | None = None
) -> tuple[Contact, bool]:
    """Create the contact or merge into it: new properties win, absent ones are kept."""
    if not user_id:
        raise IngestError("userId is required")
    with transaction.atomic():
        contact, created = Contact.objects.get_or_create(
            user_id=user_id, defaults={"email": email or "", "properties": properties or {}}
        )
        if created:
            return contact, True
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        changed = []
        if email and email != contact.email:
            contact.email = email
            changed.append("email")
        if properties:
            merged = {**contact.properties, **properties}
            if merged != contact.properties:
                contact.properties = merged
                changed.append("properties")
        if changed:
            contact.save(update_fields=[*changed, "updated_at"])
        return contact, False


def event_ingest(
    *,
    name: str,
    user_id: str,
    email: str | None = None,
    properties: dict[str, Any] | None = None,
    contact_properties: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    source: str = Event.Source.API,
    dispatch: bool = True,
) -> IngestResult:
    """Accept one event.

    1. A known idempotency key returns the first result; nothing new is stored.
    2. In one transaction: upsert the contact, store the event (pending dispatch), and mark
       exited every live run whose journey's `exit_on` matches it.
    3. The dispatcher pushes the event and cancels the exited runs once the transaction commits.
    """
    from journeys.dispatch import dispatcher
    from journeys.services import runs_exit_for_event

    if not name:
        raise IngestError("name is required")
    if idempotency_key:
        first = _event_by_key(idempotency_key)
        if first is not None:
            return first
    try:
        with transaction.atomic():
            contact, _ = contact_upsert(user_id=user_id, email=email, properties=contact_properties)
            event = Event.objects.create(
                contact=contact,
                name=name,
                properties=properties or {},
                occurred_at=occurred_at or timezone.now(),
                idempotency_key=idempotency_key or None,
                source=source,
            )
            exited = runs_exit_for_event(event=event)
            if exited:
                event.exited_run_ids = exited
                event.save(update_fields=["exited_run_ids"])
            if dispatch:
                dispatcher().after_ingest(event_ids=[event.id], exited_run_ids=exited)
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer as it did.
        first = _event_by_key(idempotency_key) if idempotency_key else None
        if first is None:
            raise
        return first
    return IngestResult(event=event, contact=contact, exited_run_ids=exited)


def _event_by_key(key: str) -> IngestResult | None:
    event = Event.objects.select_related("contact").filter(idempotency_key=key).first()
    if event is None:
        return None
    return IngestResult(event=event, contact=event.contact, exited_run_ids=list(event.exited_run_ids), created=False)


def events_dispatch(*, results: Iterable[IngestResult]) -> None:
    """Hand freshly stored events (ingested with `dispatch=False`) to the dispatcher at once."""
    from journeys.dispatch import dispatcher

    fresh = [r for r in results if r.created]
    if fresh:
        dispatcher().after_ingest(
            event_ids=[r.event.id for r in fresh],
            exited_run_ids=[run_id for r in fresh for run_id in r.exited_run_ids],
        )


def event_mark_dispatched(*, event_ids: Iterable[UUID]) -> int:
    return Event.objects.filter(pk__in=list(event_ids), dispatch_state=Event.DispatchState.PENDING).update(
        dispatch_state=Event.DispatchState.DISPATCHED, dispatched_at=timezone.now()
    )


def contact_unsubscribe(*, contact: Contact) -> Contact:
    if contact.unsubscribed_at is None:
        contact.unsubscribed_at = timezone.now()
        contact.save(update_fields=["unsubscribed_at", "updated_at"])
    return contact


def contact_resubscribe(*, contact: Contact) -> Contact:
    if contact.unsubscribed_at is not None:
        contact.unsubscribed_at = None
        contact.save(update_fields=["unsubscribed_at", "updated_at"])
    return contact


# --- API keys --------------------------------------------------------------------------------


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *, name: str, scopes: Iterable[str], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is never stored and never shown again."""
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise ValueError(
            f"scopes must be some of {', '.join(ApiKey.Scope.values)}; got {', '.join(scopes) or 'none'}"
        )
    prefix = secrets.token_hex(4)
    secret = f"hsk_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=api_key_hash(secret), scopes=scopes, expires_at=expires_at
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
