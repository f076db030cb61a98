"""What the shipped operator-alert tasks share: who a contact is, read on the server.

An alert names the person from the contacts table (properties sent with earlier events or
`PUT /v1/contacts`), never only from what the triggering event happened to carry, so a CRM that
sends just a `userId` still gets an alert a human can act on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from contacts.models import Contact, Event
from journeys.shipped.constants import Events


def _name(properties: dict[str, Any]) -> str:
    full = properties.get("name") or " ".join(
        str(properties[part]) for part in ("first_name", "last_name") if properties.get(part)
    )
    return str(full).strip()


def contact_profile_read(
    *, user_id: str, activity_days: int = 30, activity_limit: int = 5, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Name, company and recent activity of a contact, as JSON an alert template renders.

    Recent activity is the contact's event names of the last `activity_days`, each with its count
    and last time, most recent first (one grouped query). An unknown or erased contact comes back
    with only its user id.
    """
    contact = Contact.objects.filter(user_id=user_id, erased_at__isnull=True).first()
    if contact is None:
        return {"user_id": user_id, "email": "", "name": "", "company": "", "activity": []}
    properties = contact.properties or {}
    email = contact.email
    company = str(properties.get("company") or properties.get("company_name") or "").strip()
    activity = (
        Event.objects.filter(contact=contact, occurred_at__gte=timezone.now() - timedelta(days=activity_days))
        # Segment membership is Hogsend's reading of the activity, not activity of the contact's.
        .exclude(name__in=(*exclude, Events.SEGMENT_ENTERED, Events.SEGMENT_EXITED))
        .values("name")
        .annotate(count=Count("id"), last=Max("occurred_at"))
        .order_by("-last")[:activity_limit]
    )
    return {
        "user_id": user_id,
        "email": email,
        "name": _name(properties),
        "company": company,
        "activity": [
            {"event": row["name"], "count": row["count"], "last": row["last"].isoformat()} for row in activity
        ],
    }


def contact_label(profile: dict[str, Any]) -> str:
    """`Ada Lovelace (Analytical Engines)`, or the email, or the user id: the best name we have."""
    who = profile.get("name") or profile.get("email") or profile.get("user_id") or "unknown contact"
    return f"{who} ({profile['company']})" if profile.get("company") else str(who)
