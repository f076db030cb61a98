"""The send pipeline: consent, suppress window, idempotency; then delivery (emails.delivery) and retry.

It knows contacts, never runs: a run's id is passed through, and whether that run may still send
is the liveness seam's answer (`emails.liveness`). Suppressions are consent, at the ground
(`contacts.suppressions`); provider-reported outcomes are emails/webhooks.py (bounces and
complaints) and emails/tracking.py (opens and clicks).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from contacts.addresses import EmailError
from contacts.categories import CONFIRMATION, TRANSACTIONAL, UnknownCategory, category_get
from contacts.models import Contact
from emails.control_group import send_hold_reason
from emails.delivery import (
    EmailDeliveryDeferred,
    consent_block,
    email_deliver,
    email_release,
    email_transmit,
    suppression_block,
)
from emails.liveness import liveness
from emails.models import EmailLog
from emails.policy import CAPPED_REASON, QUEUE, PolicyError, on_cap_check, send_policy_decide
from emails.registry import CONFIRMATION_TEMPLATE, get_template
from emails.status import Status, email_status_advance
from emails.tasks import email_deliver_task, email_release_task

logger = logging.getLogger(__name__)


def email_send(
    *,
    to: str,
    template: str,
    idempotency_key: str,
    subject: str | None = None,
    props: dict[str, Any] | None = None,
    category: str | None = None,
    user_id: str | None = None,
    run_id: UUID | None = None,
    journey_id: str | None = None,
    suppress_seconds: float = 0,
    skip_preference_check: bool = False,
    deliver: bool = True,
    held_out: bool = False,
    priority: int = 0,
    on_cap: str = "skip",
) -> EmailLog:
    """Send one email at most once per idempotency key, and record what happened.

    Call it outside a transaction: it commits the queued row itself and then talks to the
    provider. A caller that must write the row in its own transaction passes `deliver=False`
    and calls `email_deliver` after its commit.

    1. A key already in the log returns that row, delivering it first if it is still queued (the
       process that wrote it died before its provider call).
    2. In one transaction: lock the run (if any, through the liveness seam) and refuse one that
       may no longer send; no address → skipped (`no_email_address`); check consent (suppression,
       unsubscribe, category choice) unless this is operator mail that skips it; hold the send if
       the journey's suppress window has not passed; apply the send-time policy (emails.policy:
       quiet hours hold it, a frequency cap skips or defers it — `on_cap` — under a lock per
       contact and category, `priority` deciding who keeps a contested slot); insert the row,
       queued, held, skipped or suppressed. The run lock orders the row before any exit: an exit
       that commits later finds the email queued.
    3. After commit, email_transmit: claim, provider call, record. A transient failure leaves the
       row queued and the Celery task `emails.email_deliver` retries it with backoff. A held row
       is handed to `emails.email_release` with its `held_until` as the eta.
    """
    props = props or {}
    spec = get_template(template)
    category = category or spec.category
    try:
        category_get(category)
    except UnknownCategory as error:
        raise EmailError(str(error)) from None
    if (category == CONFIRMATION) != (template == CONFIRMATION_TEMPLATE):
        raise EmailError(f"only the {CONFIRMATION_TEMPLATE!r} template is sent as {CONFIRMATION!r} mail")
    if skip_preference_check and category != TRANSACTIONAL:
        raise EmailError("only transactional (operator) mail may skip the preference check")
    try:
        on_cap_check(on_cap)
    except PolicyError as error:
        raise EmailError(str(error)) from None

    existing = EmailLog.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return _resume(existing, deliver=deliver)

    now = timezone.now()
    try:
        with transaction.atomic():
            if run_id is not None:
                liveness().hold(run_id=run_id)
            contact = Contact.objects.filter(user_id=user_id).first() if user_id else None
            hold = (
                None
                if skip_preference_check
                else send_hold_reason(contact=contact, category=category, held_out=held_out)
            )
            block, status = (
                (hold, Status.SKIPPED)
                if hold
                else _block(
                    to=to,
                    contact=contact,
                    category=category,
                    operator=skip_preference_check,
                    journey_id=journey_id,
                    suppress_seconds=suppress_seconds,
                    now=now,
                )
            )
            decision = QUEUE
            if status == Status.QUEUED:
                decision = send_policy_decide(
                    category=category, contact=contact, to=to, now=now, priority=priority, on_cap=on_cap
                )
                status, block = decision.status, decision.reason or None
            log = EmailLog.objects.create(
                idempotency_key=idempotency_key,
                to_email=to or "",
                contact=contact,
                run_id=run_id,
                template=template,
                subject=subject or spec.subject,
                category=category,
                props=props,
                status=status,
                status_reason=block or "",
                held_until=decision.held_until,
                priority=priority,
                on_cap=on_cap,
                operator_mail=skip_preference_check,
                created_at=now,
            )
            if decision.bumped:
                _bumped_apply(decision.bumped)
            # email.queued / .suppressed / .skipped for destinations (rows only, sent after commit)
            from contacts.lifecycle import email_emit

            email_emit(email_id=log.pk, status=log.status)
    except IntegrityError:
        # The same key committed by a concurrent send: theirs is the one.
        existing = EmailLog.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    if log.status == Status.HELD:
        _release_after_commit(str(log.pk), log.held_until)
    if log.status != Status.QUEUED or not deliver:
        return log
    log.contact = contact
    try:
        return email_transmit(log=log)
    except EmailDeliveryDeferred:
        _enqueue_retry(str(log.pk))
        return log


def _block(
    *,
    to: str,
    contact: Contact | None,
    category: str,
    operator: bool,
    journey_id: str | None,
    suppress_seconds: float,
    now: Any,
) -> tuple[str | None, str]:
    """Why this send may not go out and the status that records it; (None, queued) if it may."""
    if not to:
        return "no_email_address", Status.SKIPPED
    # Operator mail skips a contact's preferences, never the suppression list: a complaint or
    # a hard bounce means the address must get nothing from us, whoever sends.
    block = suppression_block(to=to) if operator else consent_block(to=to, contact=contact, category=category)
    if block is None and journey_id and suppress_seconds > 0 and contact is not None:
        recent = EmailLog.objects.filter(
            contact=contact,
            run__journey_id=journey_id,
            # A send exactly `suppress` after the last one goes out, as a re-entry exactly
            # `entry_period` after the last one is admitted: a window excludes its end.
            sent_at__gt=now - timezone.timedelta(seconds=suppress_seconds),
        ).exists()
        if recent:
            block = "suppress_window"
    return block, Status.SUPPRESSED if block else Status.QUEUED


def _bumped_apply(bumped: tuple[tuple[Any, Any], ...]) -> None:
    """Lower-priority held sends that gave up their slot: to a later one, or skipped (their source
    chose "skip"). Inside the transaction (and the lock) that took the slot."""
    for email_id, held_until in bumped:
        if held_until is None:
            email_status_advance(
                email_id=email_id, to=Status.SKIPPED, reason=CAPPED_REASON, only_from=Status.HELD
            )
        elif EmailLog.objects.filter(pk=email_id, status=Status.HELD).update(
            held_until=held_until, status_reason=CAPPED_REASON, updated_at=timezone.now()
        ):
            _release_after_commit(str(email_id), held_until)


def _release_after_commit(email_id: str, held_until: Any) -> None:
    transaction.on_commit(lambda: email_release_task.apply_async(args=[email_id], eta=held_until))


def _resume(log: EmailLog, *, deliver: bool) -> EmailLog:
    """A repeat of a send: return its row, delivering it if a crash left it queued."""
    if log.status != Status.QUEUED or not deliver:
        return log
    try:
        return email_deliver(email_id=log.pk)
    except EmailDeliveryDeferred:
        _enqueue_retry(str(log.pk))
        return EmailLog.objects.get(pk=log.pk)


def email_held_release(*, email_id: UUID | str) -> EmailLog:
    """Deliver a held send whose moment came (a journey that waited for it calls this); a row
    still held (its moment moved later) is returned as it is, a transient failure retried by the task."""
    try:
        return email_release(email_id=email_id)
    except EmailDeliveryDeferred:
        _enqueue_retry(str(email_id))
        return EmailLog.objects.get(pk=email_id)


def _enqueue_retry(email_id: str) -> None:
    """Schedule the Celery retry after commit (at once when, as usual, no transaction is open)."""
    transaction.on_commit(
        lambda: email_deliver_task.apply_async(
            args=[email_id], countdown=settings.EMAIL_RETRY_FIRST_DELAY_SECONDS
        )
    )


def email_logs_forget(*, contact_id: UUID, email: str) -> None:
    """The erasure seam's forgetter for the email log: the address and props of every email the
    contact got (by id, and by address for mail sent before the contact existed)."""
    logs = EmailLog.objects.filter(contact_id=contact_id)
    if email:
        logs = EmailLog.objects.filter(Q(contact_id=contact_id) | Q(to_email=email))
    logs.update(to_email="", props={})
