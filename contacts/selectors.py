from __future__ import annotations

import heapq
import time
import uuid
from typing import Any

from django.conf import settings

from contacts.models import ApiKey, Contact


def contact_get(*, key: str) -> Contact | None:
    """Find a contact by our id (a UUID) or by your product's user id."""
    try:
        contact_pk = uuid.UUID(key)
    except ValueError:
        contact_pk = None
    if contact_pk is not None:
        found = Contact.objects.filter(pk=contact_pk).first()
        if found is not None:
            return found
    return Contact.objects.filter(user_id=key).first()


def contact_timeline(*, contact: Contact, limit: int = 100) -> list[dict[str, Any]]:
    """Events, journey runs and emails of one contact, newest first, at most `limit` in all."""
    from emails.models import EmailLog
    from journeys.models import JourneyRun

    events = [
        {
            "type": "event",
            "at": e.occurred_at,
            "id": e.id,
            "name": e.name,
            "status": None,
            "detail": {"properties": e.properties, "source": e.source},
        }
        for e in contact.events.order_by("-occurred_at")[:limit]
    ]
    runs = [
        {
            "type": "journey_run",
            "at": r.entered_at,
            "id": r.id,
            "name": r.journey_id,
            "status": r.status,
            "detail": {
                "currentNode": r.current_node,
                "endedAt": r.ended_at.isoformat() if r.ended_at else None,
                "waitingUntil": r.waiting_until.isoformat() if r.waiting_until else None,
                "exitReason": r.exit_reason,
                "error": r.error.splitlines()[0] if r.error else "",
            },
        }
        for r in JourneyRun.objects.filter(contact=contact).order_by("-entered_at")[:limit]
    ]
    emails = [
        {
            "type": "email",
            "at": m.created_at,
            "id": m.id,
            "name": m.template,
            "status": m.status,
            "detail": {"subject": m.subject, "to": m.to_email, "reason": m.status_reason},
        }
        for m in EmailLog.objects.filter(contact=contact).order_by("-created_at")[:limit]
    ]
    merged = heapq.merge(events, runs, emails, key=lambda item: item["at"], reverse=True)
    return list(merged)[:limit]


# Known keys, per process, for a few seconds: ingest is the hottest path there is, and a key row
# changes rarely. A revocation or expiry elsewhere takes effect within API_KEY_CACHE_SECONDS.
_known_keys: dict[str, tuple[float, ApiKey]] = {}


def api_key_lookup(key_hash: str) -> ApiKey | None:
    ttl = settings.API_KEY_CACHE_SECONDS
    cached = _known_keys.get(key_hash)
    if cached is not None and time.monotonic() - cached[0] < ttl:
        return cached[1]
    key = ApiKey.objects.filter(key_hash=key_hash).first()
    if key is not None and ttl > 0:
        if len(_known_keys) > 10_000:
            _known_keys.clear()
        _known_keys[key_hash] = (time.monotonic(), key)
    return key


def api_key_forget(key_hash: str | None = None) -> None:
    """Drop cached keys (all, or one): revoking a key in this process takes effect at once."""
    if key_hash is None:
        _known_keys.clear()
    else:
        _known_keys.pop(key_hash, None)
