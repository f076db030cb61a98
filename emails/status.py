"""The email log's status machine. A status only moves forward; stale provider events are ignored.

held → queued (its moment came: quiet hours ended, a cap's slot freed) | suppressed | skipped
queued → sending (claimed for the provider call) | failed | suppressed | skipped
sending → sent | failed | unknown          (unknown: the process died in the call; not retried)
sending → queued                           (a transient failure, or a crash where the category
                                            retries: the row waits for the next attempt)
sent | unknown → delivered → opened → clicked   (each may be skipped: a click proves an open)
sent | unknown | delivered → bounced
sent | unknown | delivered | opened | clicked → complained

A provider event for an `unknown` row proves it went out, so it moves on like a sent one.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from contacts.prepared import prepared_cursor
from emails.models import EmailLog

Status = EmailLog.Status

ALLOWED_FROM: dict[str, frozenset[str]] = {
    Status.HELD: frozenset(),  # written held by the send pipeline, never moved back to it
    Status.SENDING: frozenset({Status.QUEUED}),
    Status.QUEUED: frozenset({Status.SENDING, Status.HELD}),
    Status.SENT: frozenset({Status.SENDING}),
    Status.FAILED: frozenset({Status.QUEUED, Status.SENDING}),
    Status.SUPPRESSED: frozenset({Status.QUEUED, Status.HELD}),
    Status.SKIPPED: frozenset({Status.QUEUED, Status.HELD}),
    Status.UNKNOWN: frozenset({Status.SENDING}),
    Status.DELIVERED: frozenset({Status.SENT, Status.UNKNOWN}),
    Status.OPENED: frozenset({Status.SENT, Status.UNKNOWN, Status.DELIVERED}),
    Status.CLICKED: frozenset({Status.SENT, Status.UNKNOWN, Status.DELIVERED, Status.OPENED}),
    Status.BOUNCED: frozenset({Status.SENT, Status.UNKNOWN, Status.DELIVERED}),
    Status.COMPLAINED: frozenset(
        {Status.SENT, Status.UNKNOWN, Status.DELIVERED, Status.OPENED, Status.CLICKED}
    ),
}
# Internal hand-offs destinations do not hear about: `email.queued` went out when the row was
# written, and a claim or a re-queue for a retry says nothing new about the email.
SILENT = frozenset({Status.SENDING, Status.QUEUED})


class InvalidEmailTransition(ValueError):
    def __init__(self, email_id: UUID | str, current: str, target: str) -> None:
        super().__init__(f"email {email_id} cannot move from {str(current)!r} to {str(target)!r}")
        self.current, self.target = str(current), str(target)


def can_transition(current: str, target: str) -> bool:
    return current in ALLOWED_FROM.get(target, frozenset())


def email_status_advance(
    *,
    email_id: UUID | str,
    to: str,
    reason: str | None = None,
    strict: bool = False,
    only_from: str | None = None,
    untouched_since: datetime | None = None,
    **fields: Any,
) -> bool:
    """Move the log to `to` if its current status allows it, in one conditional UPDATE (no race).

    Returns False when the move would go backwards or sideways (a provider's late `delivered`
    after our `opened`); `strict=True` raises InvalidEmailTransition instead — for code paths
    where such a move is a bug, not a late webhook. `only_from` narrows the allowed sources to
    one (the sender recording its own claim's outcome moves only from `sending`);
    `untouched_since` moves the row only if nothing updated it after that time (the sweep).
    """
    allowed = ALLOWED_FROM[to] if only_from is None else ALLOWED_FROM[to] & {only_from}
    values: dict[str, Any] = {"status": to, "updated_at": timezone.now(), **fields}
    if reason is not None:
        values["status_reason"] = reason[:2000]
    if untouched_since is None and not any(hasattr(v, "resolve_expression") for v in values.values()):
        updated = _advance(email_id=email_id, allowed=allowed, values=values)
    else:  # the sweep's (untouched since), or a value the database computes
        rows = EmailLog.objects.filter(pk=email_id, status__in=allowed)
        if untouched_since is not None:
            rows = rows.filter(updated_at__lt=untouched_since)
        updated = rows.update(**values)
    if not updated and strict:
        current = EmailLog.objects.filter(pk=email_id).values_list("status", flat=True).first()
        raise InvalidEmailTransition(email_id, current or "missing", to)
    if updated and to not in SILENT:  # email.<status> for destinations: rows only, sent after commit
        from contacts.lifecycle import email_emit

        email_emit(email_id=email_id, status=to)
    return bool(updated)


_STATUSES = frozenset(Status.values)


@functools.cache
def _advance_sql(names: tuple[str, ...], allowed: tuple[str, ...]) -> str:
    """The UPDATE for these columns from these statuses. The statuses are written into the text
    (values of `Status` only, so a handful of statements): as a list parameter, adapting it cost
    the worker more than the rest of the outcome's parameters together."""
    assert allowed and _STATUSES.issuperset(allowed), allowed
    columns = ", ".join(f"{EmailLog._meta.get_field(name).column} = %({name})s" for name in names)
    sources = ", ".join(f"'{status}'" for status in allowed)
    return f"UPDATE emails_emaillog SET {columns} WHERE id = %(email_id)s AND status IN ({sources})"


def _advance(*, email_id: UUID | str, allowed: frozenset[str] | set[str], values: dict[str, Any]) -> int:
    """The conditional UPDATE as one prepared statement per set of columns written: every send
    records its outcome with it, and building it through the ORM cost the worker more than the
    database spent running it."""
    params = {
        name: _plain(EmailLog._meta.get_field(name).get_db_prep_save(value, connection))
        for name, value in values.items()
    }
    if not allowed:  # no status moves to this one (held): nothing to update
        return 0
    params["email_id"] = email_id
    with prepared_cursor() as cursor:
        cursor.execute(_advance_sql(tuple(values), tuple(sorted(str(s) for s in allowed))), params)
        return cursor.rowcount


def _plain(value: Any) -> Any:
    """A choice (a str enum) as its plain value: the database adapter must not see an enum."""
    return str(value) if isinstance(value, str) else value


# The claim and the copy of the message as handed to the provider, in one statement: the copy is
# written only when the claim wins (a retry's attempt replaces the earlier copy).
# Its two parts are shared with the batch's hand-over (emails.batch), which also records the
# previous row's `sent` in the same statement.
CLAIM_CTE = """claimed AS (
    UPDATE emails_emaillog SET status = 'sending', status_reason = '', updated_at = %(now)s,
        attempts = attempts + 1, links = %(links)s::jsonb, provider = %(provider)s,
        provider_message_id = %(message_id)s
    WHERE id = %(email)s AND status = 'queued'
    RETURNING id
)"""
KEEP_CLAIMED_SQL = """INSERT INTO emails_sentmessage (email_id, from_email, subject, headers, text, html, recorded_at)
SELECT id, %(from_email)s, %(subject)s, %(headers)s::jsonb, %(text)s, %(html)s, %(now)s FROM claimed
ON CONFLICT (email_id) DO UPDATE SET from_email = EXCLUDED.from_email, subject = EXCLUDED.subject,
    headers = EXCLUDED.headers, text = EXCLUDED.text, html = EXCLUDED.html,
    recorded_at = EXCLUDED.recorded_at
RETURNING email_id"""
_CLAIM_KEEPING_SQL = f"WITH {CLAIM_CTE}\n{KEEP_CLAIMED_SQL}\n"


def email_claim_params(
    *, email_id: UUID | str, now: Any, kept: Any, links: list[str], provider: str, message_id: str
) -> dict[str, Any]:
    """The parameters of a claim that keeps the message's copy, for every statement that claims:
    the single send's and the batch's hand-over (which also records the previous row's `sent`)."""
    return {
        "email": email_id,
        "now": now,
        "links": json.dumps(links),
        "provider": provider,
        "message_id": message_id,
        "from_email": kept.from_email,
        "subject": kept.subject,
        "headers": json.dumps(kept.headers, cls=DjangoJSONEncoder),
        "text": kept.text,
        "html": kept.html,
    }


def email_claim_keeping(
    *, email_id: UUID | str, kept: Any, links: list[str], provider: str, message_id: str
) -> bool:
    """queued → sending (attempts + 1) and the kept copy of the message (`kept`, an unsaved
    `SentMessage`) in one conditional statement: of two deliverers, exactly one wins the row
    (False for the other). `updated_at` becomes the claim's time, which the sweep reads to tell a
    call in progress from one whose process died."""
    params = email_claim_params(
        email_id=email_id,
        now=timezone.now(),
        kept=kept,
        links=links,
        provider=provider,
        message_id=message_id,
    )
    with prepared_cursor() as cursor:
        cursor.execute(_CLAIM_KEEPING_SQL, params)
        return cursor.fetchone() is not None


def email_stamp_first(*, email_id: UUID | str, field: str, at: Any) -> bool:
    """Stamp a first-time timestamp (opened_at, delivered_at, ...) only if it is still empty."""
    return bool(
        EmailLog.objects.filter(pk=email_id, **{f"{field}__isnull": True}).update(
            **{field: at, "updated_at": timezone.now()}
        )
    )
