"""Delivery: hand one queued email to the provider, re-checking consent first.

The Celery task (emails.tasks) calls `email_deliver`; the send pipeline (emails.services) calls it
once at once and enqueues the task for retries. Nothing here imports either of them.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from contacts.models import Contact, Suppression
from emails.backends import error_is_transient
from emails.categories import CONFIRMATION, category_allows
from emails.liveness import liveness
from emails.message import email_message_build
from emails.models import EmailLog
from emails.render import EmailError, email_address_check
from emails.status import Status, email_status_advance

logger = logging.getLogger(__name__)


class EmailDeliveryDeferred(Exception):
    """A transient provider failure: the log stays queued and the Celery task retries it."""


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


def email_deliver(*, email_id: UUID | str, final_attempt: bool = False) -> EmailLog:
    """Hand one queued email to the provider.

    1. Lock the row (skip if another worker holds it or it is no longer queued): one delivery at a time.
    2. Re-check what may have changed since it was queued: the run may still send, the address
       is not suppressed and the contact has not unsubscribed (operator mail excepted).
    3. Build the message (render, consent headers, tracked links) and send it.
    4. Success → sent. Permanent failure → failed with the provider's reason. Transient failure →
       stays queued with the reason and raises EmailDeliveryDeferred (failed if `final_attempt`).
    """
    with transaction.atomic():
        log = (
            EmailLog.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("contact")
            .filter(pk=email_id, status=Status.QUEUED)
            .first()
        )
        if log is None:
            return EmailLog.objects.get(pk=email_id)
        if log.run_id is not None and (refusal := liveness().refusal(run_id=log.run_id)):
            return _finish(log, Status.SUPPRESSED, reason=refusal)
        if log.operator_mail:
            block = suppression_block(to=log.to_email)
        else:
            block = consent_block(to=log.to_email, contact=log.contact, category=log.category)
        if block:
            return _finish(log, Status.SUPPRESSED, reason=block)
        try:
            email_address_check(log.to_email)
            built = email_message_build(log=log, contact=log.contact)
        except EmailError as error:
            return _finish(log, Status.FAILED, reason=str(error))
        log.attempts += 1
        log.links = built.links
        log.provider = getattr(settings, "EMAIL_PROVIDER", "")
        log.save(update_fields=["attempts", "links", "provider", "updated_at"])
        try:
            get_connection().send_messages([built.message])
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"[:2000]
            if not (error_is_transient(error) and not final_attempt):
                logger.warning("email %s to %s failed: %s", log.template, log.to_email, reason)
                if error_is_transient(error):
                    reason = f"gave up after {log.attempts} attempts: {reason}"
                return _finish(log, Status.FAILED, reason=reason)
            # Transient: keep the row queued (committed below), then let the caller schedule a retry.
            logger.info("email %s deferred (attempt %s): %s", log.pk, log.attempts, reason)
            EmailLog.objects.filter(pk=log.pk).update(
                status_reason=f"retrying: {reason}", updated_at=timezone.now()
            )
            deferred = error
        else:
            status = getattr(built.message, "anymail_status", None)
            provider_id = getattr(status, "message_id", None) or built.message_id
            return _finish(
                log, Status.SENT, reason="", sent_at=timezone.now(), provider_message_id=str(provider_id)
            )
    raise EmailDeliveryDeferred(str(deferred)) from deferred


def _finish(log: EmailLog, to: str, *, reason: str, **fields: Any) -> EmailLog:
    email_status_advance(email_id=log.pk, to=to, reason=reason, strict=True, **fields)
    log.refresh_from_db()
    return log
