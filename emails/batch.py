"""Batch delivery: many committed queued rows of one template handed to the provider over one
connection, with no transaction open (a broadcast's batch; emails.services.email_send_batch wrote them).

The rules are a single send's (emails.delivery.email_transmit): the same message builder, the same
claim and kept copy, the same outcome records. What a batch shares is the rendering (the template
and its CSS inlining once for all its rows, `RenderOnce`), the MIME generation on the SMTP backend
(once per shape, each message's values filled in: emails.wire), the provider connection, and the
round trips: one statement per row (prepared, contacts.prepared) records the previous row's `sent`
and claims this one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.utils import timezone

from contacts.addresses import EmailError, email_address_check
from contacts.lifecycle import email_emit
from contacts.prepared import prepared_cursor
from emails.delivery import EmailDeliveryDeferred, _failure, _fault_point, _finish, _set
from emails.message import BuiltEmail, email_message_build, sent_message_kept
from emails.models import EmailLog
from emails.render import RenderOnce
from emails.status import CLAIM_CTE, KEEP_CLAIMED_SQL, Status, email_claim_params
from emails.wire import WireShapes, smtp_wire_send

logger = logging.getLogger(__name__)

# The previous row's `sent` (as emails.delivery records a single send's), and this row's claim and
# kept copy (as emails.status.email_claim_keeping), in one round trip.
_HANDOVER_SQL = f"""
WITH recorded AS (
    UPDATE emails_emaillog SET status = 'sent', status_reason = '', updated_at = %(now)s,
        sent_at = %(sent_at)s, provider_message_id = %(sent_message_id)s
    WHERE id = %(sent)s AND status = 'sending'
    RETURNING id
), {CLAIM_CTE}, kept AS (
{KEEP_CLAIMED_SQL}
)
SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM kept)
"""


def emails_deliver_batch(*, logs: Sequence[EmailLog]) -> list[EmailLog]:
    """Deliver committed queued rows (fresh ones: a row that waited goes through
    `emails.delivery.email_deliver`, which checks consent again) over one provider connection.
    Returns the rows as they ended, in order; a transient failure's row is left queued with the
    Celery retry scheduled, as for a single send. Call it with no transaction open.

    1. Build every message first (one rendering for the batch); a row that cannot be built fails.
    2. For each row, one statement records the previous row's `sent` and claims this one (queued →
       sending, attempts + 1, the kept copy); a row another deliverer holds, or a cancel suppressed
       meanwhile, is returned as it is. A row is `sending` only during its own provider call, so a
       worker killed anywhere leaves at most one row whose outcome is unknown.
    3. The provider call, on the batch's connection. A failure is recorded at once, as a single
       send's (permanent → failed, transient → queued and retried), and the connection reopened.
    4. The last row's `sent` is recorded by itself.
    """
    render = RenderOnce()
    wire = WireShapes()
    provider = getattr(settings, "EMAIL_PROVIDER", "")
    ready: list[tuple[int, EmailLog, BuiltEmail]] = []
    done: dict[int, EmailLog] = {}
    for index, log in enumerate(logs):
        try:
            email_address_check(log.to_email)
            ready.append((index, log, email_message_build(log=log, contact=log.contact, render=render)))
        except EmailError as error:
            done[index] = _finish(log, Status.FAILED, reason=str(error))
    smtp = _open()
    pending: tuple[EmailLog, dict[str, Any]] | None = None  # sent, its record not yet written
    try:
        for index, log, built in ready:
            pending, done[index], smtp = _hand_over(
                log, built, pending=pending, provider=provider, smtp=smtp, wire=wire
            )
    finally:
        if pending is not None:
            _finish(pending[0], Status.SENT, reason="", **pending[1])
        _close(smtp)
    return [done[index] for index in range(len(logs))]


def _hand_over(
    log: EmailLog,
    built: BuiltEmail,
    *,
    pending: tuple[EmailLog, dict[str, Any]] | None,
    provider: str,
    smtp: Any,
    wire: WireShapes,
) -> tuple[tuple[EmailLog, dict[str, Any]] | None, EmailLog, Any]:
    """Steps 2 and 3 for one row: (the row whose `sent` is still to record, this row, the connection)."""
    from emails.tasks import email_deliver_task

    kept = sent_message_kept(email_id=log.pk, built=built)
    now = timezone.now()
    params = {
        **email_claim_params(
            email_id=log.pk,
            now=now,
            kept=kept,
            links=built.links,
            provider=provider,
            message_id=built.message_id,
        ),
        "sent": pending[0].pk if pending else None,
        "sent_at": pending[1]["sent_at"] if pending else None,
        "sent_message_id": pending[1]["provider_message_id"] if pending else "",
    }
    with prepared_cursor() as cursor:  # the message's copy among its parameters: bound, not quoted
        cursor.execute(_HANDOVER_SQL, params)
        recorded, claimed = cursor.fetchone()
    if pending is not None:
        if recorded:
            _set(pending[0], Status.SENT, reason="", **pending[1])
            email_emit(email_id=pending[0].pk, status=Status.SENT)
        else:  # only the sweep takes a claim away, and only one older than any provider call lasts
            logger.warning("email %s left sending before its outcome (sent) was recorded", pending[0].pk)
    if not claimed:
        return None, EmailLog.objects.get(pk=log.pk), smtp
    claim = {"links": built.links, "provider": provider, "provider_message_id": built.message_id}
    log = _set(log, Status.SENDING, reason="", attempts=log.attempts + 1, **claim)
    try:
        _provider_call(smtp, built.message, wire=wire)
    except Exception as error:
        _close(smtp)
        try:
            log = _failure(log, error, final_attempt=False)
        except EmailDeliveryDeferred:
            email_deliver_task.apply_async(
                args=[str(log.pk)], countdown=settings.EMAIL_RETRY_FIRST_DELAY_SECONDS
            )
        return None, log, _open()
    _fault_point(log.to_email)
    anymail_status = getattr(built.message, "anymail_status", None)
    provider_id = getattr(anymail_status, "message_id", None) or built.message_id
    return (log, {"sent_at": timezone.now(), "provider_message_id": str(provider_id)}), log, smtp


def _provider_call(smtp: Any, message: Any, *, wire: WireShapes) -> None:
    """One message on the batch's connection. On Django's SMTP backend, the bytes it would send
    (emails.wire, generated once for the batch's shape and filled in) go straight to its session:
    the same bytes and envelope without the generator's and the address parser's cost per
    message. Any other backend, or a message emails.wire cannot shape, takes the backend's send."""
    if smtp is not None and smtp_wire_send(smtp, message, shapes=wire):
        return
    (smtp or get_connection()).send_messages([message])


def _open() -> Any:
    """The batch's provider connection; None if it will not open (each send then reports its own failure)."""
    smtp = get_connection()
    try:
        smtp.open()
    except Exception:
        logger.info("batch delivery: the provider connection did not open", exc_info=True)
        return None
    return smtp


def _close(smtp: Any) -> None:
    if smtp is None:
        return
    try:
        smtp.close()
    except Exception:
        logger.info("batch delivery: closing the provider connection failed", exc_info=True)
