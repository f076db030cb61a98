"""The send pipeline: consent, suppress window, idempotency, render, hand to the provider, retry.

Also the writes operators and webhooks make: suppressions and provider-reported outcomes
(see emails/webhooks.py for bounces and complaints, emails/tracking.py for opens and clicks).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import css_inline
from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.template.backends.django import DjangoTemplates
from django.template.loader import render_to_string
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from contacts.models import Contact, Suppression
from emails.backends import error_is_transient
from emails.categories import TRANSACTIONAL, UnknownCategory, category_allows, category_get
from emails.models import EmailLog
from emails.registry import get_template
from emails.status import Status, email_status_advance

logger = logging.getLogger(__name__)
__all__ = ["TRANSACTIONAL", "EmailError", "email_render", "email_send"]


class EmailError(ValueError):
    """A send that cannot be attempted as asked; the message says why."""


class EmailDeliveryDeferred(Exception):
    """A transient provider failure: the log stays queued and the Celery task retries it."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


_inliner = css_inline.CSSInliner(keep_style_tags=False)


@functools.cache
def _text_templates() -> DjangoTemplates:
    """The project's template dirs without HTML autoescaping: the text part is not HTML, and
    "O'Brien" must not arrive as "O&#x27;Brien"."""
    base = settings.TEMPLATES[0]
    return DjangoTemplates(
        {
            "NAME": "email-text",
            "DIRS": base.get("DIRS", []),
            "APP_DIRS": True,
            "OPTIONS": {"autoescape": False},
        }
    )


def email_render(
    *, template: str, props: dict[str, Any], subject: str | None = None, context: dict[str, Any] | None = None
) -> RenderedEmail:
    """Render subject, text and HTML (CSS inlined). `context` adds the consent links at send time;
    previews may leave it out and get a footer without them."""
    spec = get_template(template)
    missing = [name for name in spec.required_props if props.get(name) in (None, "")]
    if missing:
        raise EmailError(f"template {template!r} needs props: {', '.join(missing)}")
    full_context = {**props, "props": props, **(context or {})}
    try:
        html = render_to_string(f"emails/{template}/body.html", full_context)
    except TemplateDoesNotExist:
        raise EmailError(f"template {template!r} has no templates/emails/{template}/body.html") from None
    text = _text_templates().get_template(f"emails/{template}/body.txt").render(full_context)
    return RenderedEmail(
        subject=subject or spec.subject, text=text.strip() + "\n", html=_inliner.inline(html)
    )


def email_address_check(address: str) -> str:
    """The normalized address, or EmailError saying what is wrong with it."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise EmailError(f"{address!r} is not a valid email address: {error}") from None


def _suppression_block(*, to: str) -> str | None:
    """Why no mail at all may go to this address (it bounced, complained, or was suppressed)."""
    suppression = Suppression.objects.filter(email__iexact=to).values_list("reason", flat=True).first()
    return f"suppressed:{suppression}" if suppression else None


def _consent_block(*, to: str, contact: Contact | None, category: str) -> str | None:
    """Why this address may not get this category of mail, or None if it may."""
    suppression = _suppression_block(to=to)
    if suppression:
        return suppression
    contacts = [contact] if contact is not None else list(Contact.objects.filter(email__iexact=to))
    for person in contacts:
        if person.unsubscribed_at is not None:
            return "unsubscribed"
        if not category_allows(contact=person, category_id=category):
            return f"category_opt_out:{category}"
    return None


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
) -> EmailLog:
    """Send one email at most once per idempotency key, and record what happened.

    1. A key already in the log returns that log row; nothing is sent again.
    2. Under a lock on the run (if any): refuse a run that is no longer live; check consent
       (suppression, unsubscribe, category choice) unless this is operator mail that skips it;
       hold the send if the journey's suppress window has not passed; write the log row.
    3. Deliver at once (email_deliver). A transient provider failure leaves the row queued and
       the Celery task `emails.email_deliver` retries it with backoff after commit.
    """
    from journeys.models import JourneyRun
    from journeys.services import RunNotLive

    props = props or {}
    spec = get_template(template)
    category = category or spec.category
    try:
        category_get(category)
    except UnknownCategory as error:
        raise EmailError(str(error)) from None
    if skip_preference_check and category != TRANSACTIONAL:
        raise EmailError("only transactional (operator) mail may skip the preference check")
    if not to:
        raise EmailError("a recipient address is required")

    existing = EmailLog.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing

    now = timezone.now()
    with transaction.atomic():
        if run_id is not None:
            status = (
                JourneyRun.objects.select_for_update()
                .filter(pk=run_id)
                .values_list("status", flat=True)
                .first()
            )
            if status not in JourneyRun.LIVE_STATUSES:
                raise RunNotLive(run_id, status or "gone")
        contact = Contact.objects.filter(user_id=user_id).first() if user_id else None
        # Operator mail skips a contact's preferences, never the suppression list: a complaint or
        # a hard bounce means the address must get nothing from us, whoever sends.
        block = (
            _suppression_block(to=to)
            if skip_preference_check
            else _consent_block(to=to, contact=contact, category=category)
        )
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
        log, created = EmailLog.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "to_email": to,
                "contact": contact,
                "run_id": run_id,
                "template": template,
                "subject": subject or spec.subject,
                "category": category,
                "props": props,
                "status": Status.SUPPRESSED if block else Status.QUEUED,
                "status_reason": block or "",
                "operator_mail": skip_preference_check,
                "created_at": now,
            },
        )
        if created:  # email.queued / email.suppressed for destinations (rows only, sent after commit)
            from integrations.lifecycle import email_emit

            email_emit(email_id=log.pk, status=log.status)
    if not created or log.status != Status.QUEUED:
        return log
    try:
        return email_deliver(email_id=log.pk)
    except EmailDeliveryDeferred:
        email_id = str(log.pk)
        transaction.on_commit(lambda: _enqueue_retry(email_id))
        log.refresh_from_db()
        return log


def _enqueue_retry(email_id: str) -> None:
    from emails.tasks import email_deliver_task

    email_deliver_task.apply_async(args=[email_id], countdown=settings.EMAIL_RETRY_FIRST_DELAY_SECONDS)


def email_deliver(*, email_id: UUID | str, final_attempt: bool = False) -> EmailLog:
    """Hand one queued email to the provider.

    1. Lock the row (skip if another worker holds it or it is no longer queued): one delivery at a time.
    2. Re-check what may have changed since it was queued: the run is still live, the address
       is not suppressed and the contact has not unsubscribed (operator mail excepted).
    3. Build the message (render, consent headers, tracked links) and send it.
    4. Success → sent. Permanent failure → failed with the provider's reason. Transient failure →
       stays queued with the reason and raises EmailDeliveryDeferred (failed if `final_attempt`).
    """
    from emails.message import email_message_build
    from journeys.models import JourneyRun

    with transaction.atomic():
        log = (
            EmailLog.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("contact")
            .filter(pk=email_id, status=Status.QUEUED)
            .first()
        )
        if log is None:
            return EmailLog.objects.get(pk=email_id)
        if log.run_id is not None:
            run_status = JourneyRun.objects.filter(pk=log.run_id).values_list("status", flat=True).first()
            if run_status not in JourneyRun.LIVE_STATUSES:
                return _finish(log, Status.SUPPRESSED, reason=f"run_not_live:{run_status or 'gone'}")
        if log.operator_mail:
            block = _suppression_block(to=log.to_email)
        else:
            block = _consent_block(to=log.to_email, contact=log.contact, category=log.category)
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


# --- suppressions ------------------------------------------------------------------------------


def suppression_create(*, email: str, reason: str = Suppression.Reason.MANUAL, note: str = "") -> Suppression:
    """Suppress an address. A complaint outranks an earlier bounce or manual entry; otherwise the
    first reason stays (the note explains the latest)."""
    if reason not in Suppression.Reason.values:
        raise EmailError(f"reason must be one of {', '.join(Suppression.Reason.values)}")
    address = email.strip().lower()
    with transaction.atomic():
        suppression, created = Suppression.objects.select_for_update().get_or_create(
            email=address, defaults={"reason": reason, "note": note}
        )
        if not created and reason == Suppression.Reason.COMPLAINT and suppression.reason != reason:
            suppression.reason, suppression.note = reason, note or suppression.note
            suppression.save(update_fields=["reason", "note"])
        if created:
            from integrations.lifecycle import suppression_emit  # contact.suppressed for destinations

            suppression_emit(email=address, reason=reason, note=note)
    return suppression


def suppression_remove(*, email: str) -> int:
    """Lift the suppression of an address (any reason); returns how many rows went."""
    deleted, _ = Suppression.objects.filter(email__iexact=email.strip()).delete()
    return deleted
