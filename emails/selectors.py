"""Reads of the email log for other views."""

from __future__ import annotations

from typing import Any

from emails.models import EmailLog


def contact_emails_timeline(*, contact: Any, limit: int) -> list[dict[str, Any]]:
    """A contact's emails for its timeline (installed into `contacts.selectors` at start-up)."""
    return [
        {
            "type": "email",
            "at": m.created_at,
            "id": m.id,
            "name": m.template,
            "status": m.status,
            "detail": {
                "subject": m.subject,
                "to": m.to_email,
                "reason": m.status_reason,
                **({"heldUntil": m.held_until.isoformat()} if m.status == EmailLog.Status.HELD else {}),
            },
        }
        for m in EmailLog.objects.filter(contact=contact).order_by("-created_at")[:limit]
    ]
