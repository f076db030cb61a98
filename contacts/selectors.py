from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Callable
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


# What the apps above keep about a contact, for its timeline: each installs a source at start-up
# (journeys its runs, emails its log), so this app reads nothing of theirs.
TimelineSource = Callable[..., list[dict[str, Any]]]  # source(*, contact, limit) -> newest first
_timeline_sources: dict[str, TimelineSource] = {}


def timeline_source_install(*, name: str, source: TimelineSource) -> None:
    _timeline_sources[name] = source


def contact_timeline(*, contact: Contact, limit: int = 100) -> list[dict[str, Any]]:
    """Events, journey runs and emails of one contact, newest first, at most `limit` in all."""
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
    others = [source(contact=contact, limit=limit) for source in _timeline_sources.values()]
    merged = heapq.merge(events, *others, key=lambda item: item["at"], reverse=True)
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


def contact_timezone_get(*, contact_id: uuid.UUID | str) -> str:
    """The contact's IANA time zone (its `timezone` property, else HOGSEND_DEFAULT_TIMEZONE)."""
    from contacts.timezones import TIMEZONE_PROPERTY, contact_zone

    name = (
        Contact.objects.filter(pk=contact_id)
        .values_list(f"properties__{TIMEZONE_PROPERTY}", flat=True)
        .first()
    )
    return contact_zone({TIMEZONE_PROPERTY: name} if name else None).key
