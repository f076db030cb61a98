"""Delivery: hand one email row to the provider, with no transaction open and no row lock held.

1. The row is committed `queued` first (emails.services.email_send), with consent checked.
2. `email_transmit` claims it (queued → sending, one conditional UPDATE that commits by itself),
   calls the provider, and records the outcome at once with another conditional UPDATE.
3. A crash between the claim and the record leaves the row `sending`; emails.sweep settles it by
   its category's policy. A crash before the claim leaves it `queued`; a retried send or the
   sweep delivers it.

The Celery task (emails.tasks) and the sweep call `email_deliver`; the send pipeline calls
`email_transmit` right after its own commit. Nothing here imports either of them.
"""

from __future__ import annotations

import logging
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from contacts.addresses import EmailError, email_address_check
from contacts.categories import CONFIRMATION, category_allows
from contacts.models import Contact, Suppression
from emails.backends import error_is_transient
from emails.connections import provider_send
from emails.liveness import liveness
from emails.message import email_message_build, sent_message_kept
from emails.models import EmailLog
from emails.render import RenderOnce
from emails.status import Status, email_claim_keeping, email_status_advance
from emails.wire import WireShapes

logger = logging.getLogger(__name__)


class EmailDeliveryDeferred(Exception):
    """A transient provider failure: the log is queued again and the Celery task retries it."""


def suppression_block(*, to: str) -> str | None:
    """Why no mail at all may go to this address (it bounced, complained, or was suppressed)."""
    suppression = Suppression.objects.filter(email__iexact=to).values_list("reason", flat=True).first()
    return f"suppressed:{suppression}" if suppression else None


def consent_block(*, to: str, contact: Contact | None, category: str) -> str | None:
    """Why this address may not get this category of mail, or None if it may."""
    suppression = suppression_block(to=to)
    if suppression:
        return suppression
    contacts = [contact] if contact is not None else list(Contact.objects.filter(email__iexact=to))
    return choices_block(contacts=contacts, category=category)


def choices_block(*, contacts: list[Contact], category: str) -> str | None:
    """Why these contacts' own choices keep this category of mail from them (the suppression list
    aside), or None if they allow it."""
    for person in contacts:
        if category == CONFIRMATION:
            # The one email double opt-in allows before confirming, also to someone signing up
            # again after an unsubscribe; the send pipeline lets only the confirmation template use it.
            continue
        if person.awaiting_confirmation:
            return "unconfirmed"
        if person.unsubscribed_at is not None:
            return "unsubscribed"
        if not category_allows(contact=person, category_id=category):
            return f"category_opt_out:{category}"
    return None


def delivery_block(*, log: EmailLog) -> str | None:
    """Why a row that waited may no longer go out: its run ended, or consent changed meanwhile."""
    if log.run_id is not None and (refusal := liveness().refusal(run_id=log.run_id)):
        return refusal
    if log.operator_mail:  # operator mail skips preferences, never the suppression list
        return suppression_block(to=log.to_email)
    return consent_block(to=log.to_email, contact=log.contact, category=log.category)


def email_deliver(*, email_id: UUID | str, final_attempt: bool = False) -> EmailLog:
    """Deliver a row that waited: the retry task, the sweep, a send retried after its process died.

    1. Read it; only a queued row goes on (any other status is returned as it is).
    2. Re-check what may have changed while it waited (delivery_block): blocked → suppressed.
    3. email_transmit: claim, send, record.
    """
    log = EmailLog.objects.select_related("contact").get(pk=email_id)
    if log.status != Status.QUEUED:
        return log
    block = delivery_block(log=log)
    if block:
        if not email_status_advance(email_id=log.pk, to=Status.SUPPRESSED, reason=block):
            return EmailLog.objects.get(pk=email_id)  # another deliverer claimed it meanwhile
        return _set(log, Status.SUPPRESSED, reason=block)
    # However the retries came (the task's backoff, the sweep), a transient failure ends somewhere.
    final_attempt = final_attempt or log.attempts + 1 >= settings.EMAIL_MAX_ATTEMPTS
    return email_transmit(log=log, final_attempt=final_attempt)


def email_release(*, email_id: UUID | str, now: datetime | None = None) -> EmailLog:
    """A held send whose moment came (the release task, the sweep, a journey that waited for it).

    1. held → queued in one conditional UPDATE, only once `held_until` has passed: of several
       releasers one moves it, and a row whose moment a higher-priority send pushed back stays held.
    2. A queued row is delivered (email_deliver: consent and the run re-checked, then one claim,
       so it goes out exactly once whoever released it). Any other row is returned as it is.
    """
    now = now or timezone.now()
    EmailLog.objects.filter(pk=email_id, status=Status.HELD, held_until__lte=now).update(
        status=Status.QUEUED, updated_at=now
    )
    log = EmailLog.objects.select_related("contact").get(pk=email_id)
    if log.status != Status.QUEUED:
        return log
    return email_deliver(email_id=email_id)


_single_render: Any = None


def single_render() -> Any:
    """The single sends' renderer: emails.render.RenderOnce kept for the process, so the template
    and its CSS inlining are rendered once per template and props, not once per email (a
    journey's sends to many contacts mostly share both); each email fills in its own links."""
    global _single_render
    if _single_render is None:
        _single_render = RenderOnce(max_shapes=settings.EMAIL_RENDER_SHAPES)
    return _single_render


_single_wire: Any = None


def single_wire() -> WireShapes:
    """The single sends' MIME shapes on Django's SMTP backend: emails.wire.WireShapes kept for
    the process, as `single_render` keeps the renders, so a template's message is generated once
    per shape (its sender, subject, headers and parts) and each email's values filled in, not put
    through the email package's generator per email."""
    global _single_wire
    if _single_wire is None:
        _single_wire = WireShapes(max_shapes=settings.EMAIL_WIRE_SHAPES)
    return _single_wire


def email_transmit(*, log: EmailLog, final_attempt: bool = False, connection: Any = None) -> EmailLog:
    """Claim a committed queued row, call the provider, record the outcome.

    1. Build the message; a template or address error fails the row (nothing was sent).
    2. Claim it (queued → sending, attempts + 1). Another deliverer holding it: return it as it is.
    3. Call the provider. No transaction is open: the claim committed by itself.
    4. Record at once: sent with the provider's id; a permanent error → failed; a transient one →
       queued again with the reason and EmailDeliveryDeferred raised for the caller to schedule
       a retry (failed instead when `final_attempt`).

    `connection`: an open backend connection a caller sending many reuses (one SMTP session for a
    broadcast's batch); by default the send goes out on this thread's kept connection
    (emails.connections).
    """
    try:
        email_address_check(log.to_email)
        built = email_message_build(log=log, contact=log.contact, render=single_render())
    except EmailError as error:
        return _finish(log, Status.FAILED, reason=str(error))
    provider = getattr(settings, "EMAIL_PROVIDER", "")
    claim = {"links": built.links, "provider": provider, "provider_message_id": built.message_id}
    # The claim and the copy of what the provider is handed (for the Studio), in one statement.
    kept = sent_message_kept(email_id=log.pk, built=built)
    if not email_claim_keeping(
        email_id=log.pk, kept=kept, links=built.links, provider=provider, message_id=built.message_id
    ):
        return EmailLog.objects.get(pk=log.pk)
    log = _set(log, Status.SENDING, reason="", attempts=log.attempts + 1, **claim)
    try:
        if connection is not None:
            connection.send_messages([built.message])
        else:
            provider_send(built.message, wire=single_wire())
    except Exception as error:
        return _failure(log, error, final_attempt=final_attempt)
    _fault_point(log.to_email)
    anymail_status = getattr(built.message, "anymail_status", None)
    provider_id = getattr(anymail_status, "message_id", None) or built.message_id
    return _finish(log, Status.SENT, reason="", sent_at=timezone.now(), provider_message_id=str(provider_id))


def _failure(log: EmailLog, error: Exception, *, final_attempt: bool) -> EmailLog:
    reason = f"{type(error).__name__}: {error}"[:2000]
    transient = error_is_transient(error)
    if not transient or final_attempt:
        logger.warning("email %s to %s failed: %s", log.template, log.to_email, reason)
        if transient:
            reason = f"gave up after {log.attempts} attempts: {reason}"
        return _finish(log, Status.FAILED, reason=reason)
    logger.info("email %s deferred (attempt %s): %s", log.pk, log.attempts, reason)
    _finish(log, Status.QUEUED, reason=f"retrying: {reason}")
    raise EmailDeliveryDeferred(reason) from error


def _finish(log: EmailLog, to: str, *, reason: str, **fields: Any) -> EmailLog:
    """Record the outcome of our own claim (or of a row we hold queued) in one conditional UPDATE."""
    source = Status.SENDING if log.status == Status.SENDING else Status.QUEUED
    if not email_status_advance(email_id=log.pk, to=to, reason=reason, only_from=source, **fields):
        # Only the sweep takes a claim away, and only one older than any provider call lasts.
        logger.warning("email %s left %s before its outcome (%s) was recorded", log.pk, source, to)
        return EmailLog.objects.get(pk=log.pk)
    return _set(log, to, reason=reason, **fields)


def _set(log: EmailLog, status: str, *, reason: str, **fields: Any) -> EmailLog:
    """Mirror an UPDATE that succeeded on the instance in hand (no re-read)."""
    log.status, log.status_reason = status, reason[:2000]
    for name, value in fields.items():
        setattr(log, name, value)
    return log


def _fault_point(to_email: str) -> None:
    """Crash trials: die here, once, between the provider's answer and its record.

    EMAIL_FAULT_KILL_AFTER_SEND_FILE names a file; while it exists, the first send to get here
    removes it and the process SIGKILLs itself, exactly as a crash at this point would. A file
    that holds an address fires only on a send to that address, so a run an earlier trial left in
    the engine (handed to the next worker once the dead one's heartbeats stop) cannot set it off.
    """
    path = settings.EMAIL_FAULT_KILL_AFTER_SEND_FILE
    if not path:
        return
    try:
        target = Path(path).read_text().strip()
    except FileNotFoundError:
        return
    if target and target.lower() != to_email.lower():
        return
    try:
        os.remove(path)
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
