"""The email log's status machine. A status only moves forward; stale provider events are ignored.

queued → sent | failed | suppressed
sent → delivered → opened → clicked           (each may be skipped: a click proves an open)
sent | delivered → bounced
sent | delivered | opened | clicked → complained
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.utils import timezone

from emails.models import EmailLog

Status = EmailLog.Status

ALLOWED_FROM: dict[str, frozenset[str]] = {
    Status.SENT: frozenset({Status.QUEUED}),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.SUPPRESSED: frozenset({Status.QUEUED}),
    Status.DELIVERED: frozenset({Status.SENT}),
    Status.OPENED: frozenset({Status.SENT, Status.DELIVERED}),
    Status.CLICKED: frozenset({Status.SENT, Status.DELIVERED, Status.OPENED}),
    Status.BOUNCED: frozenset({Status.SENT, Status.DELIVERED}),
    Status.COMPLAINED: frozenset({Status.SENT, Status.DELIVERED, Status.OPENED, Status.CLICKED}),
}


class InvalidEmailTransition(ValueError):
    def __init__(self, email_id: UUID | str, current: str, target: str) -> None:
        super().__init__(f"email {email_id} cannot move from {str(current)!r} to {str(target)!r}")
        self.current, self.target = str(current), str(target)


def can_transition(current: str, target: str) -> bool:
    return current in ALLOWED_FROM.get(target, frozenset())


def email_status_advance(
    *, email_id: UUID | str, to: str, reason: str | None = None, strict: bool = False, **fields: Any
) -> bool:
    """Move the log to `to` if its current status allows it, in one conditional UPDATE (no race).

    Returns False when the move would go backwards or sideways (a provider's late `delivered`
    after our `opened`); `strict=True` raises InvalidEmailTransition instead — for code paths
    where such a move is a bug, not a late webhook.
    """
    values: dict[str, Any] = {"status": to, "updated_at": timezone.now(), **fields}
    if reason is not None:
        values["status_reason"] = reason[:2000]
    updated = EmailLog.objects.filter(pk=email_id, status__in=ALLOWED_FROM[to]).update(**values)
    if not updated and strict:
        current = EmailLog.objects.filter(pk=email_id).values_list("status", flat=True).first()
        raise InvalidEmailTransition(email_id, current or "missing", to)
    if updated:  # email.<status> for destinations: rows only, sent after commit
        from contacts.lifecycle import email_emit

        email_emit(email_id=email_id, status=to)
    return bool(updated)


def email_stamp_first(*, email_id: UUID | str, field: str, at: Any) -> bool:
    """Stamp a first-time timestamp (opened_at, delivered_at, ...) only if it is still empty."""
    return bool(
        EmailLog.objects.filter(pk=email_id, **{f"{field}__isnull": True}).update(
            **{field: at, "updated_at": timezone.now()}
        )
    )
