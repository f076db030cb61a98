"""The send pipeline: consent, suppress window, idempotency, render, hand to the mail backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from contacts.models import Contact, Suppression
from emails.models import EmailLog
from emails.registry import get_template

logger = logging.getLogger(__name__)
Status = EmailLog.Status
TRANSACTIONAL = "transactional"


class EmailError(ValueError):
    """A send that cannot be attempted as asked; the message says why."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def email_render(*, template: str, props: dict[str, Any], subject: str | None = None) -> RenderedEmail:
    spec = get_template(template)
    missing = [name for name in spec.required_props if props.get(name) in (None, "")]
    if missing:
        raise EmailError(f"template {template!r} needs props: {', '.join(missing)}")
    context = {**props, "props": props}
    try:
        html = render_to_string(f"emails/{template}/body.html", context)
    except TemplateDoesNotExist:
        raise EmailError(f"template {template!r} has no templates/emails/{template}/body.html") from None
    text = render_to_string(f"emails/{template}/body.txt", context)
    return RenderedEmail(subject=subject or spec.subject, text=text.strip() + "\n", html=html)


def _consent_block(*, to: str, contact: Contact | None, category: str) -> str | None:
    """Why this address may not get this category of mail, or None if it may."""
    suppression = Suppression.objects.filter(email__iexact=to).values_list("reason", flat=True).first()
    if suppression:
        return f"suppressed:{suppression}"
    if contact is not None:
        if contact.unsubscribed_at is not None:
            return "unsubscribed"
        if category in contact.category_opt_outs:
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
       (suppression, unsubscribe, category opt-out) unless this is operator mail that skips it;
       hold the send if the journey's suppress window has not passed; write the log row.
    3. Render and hand to the mail backend outside the transaction; record sent or failed.
    """
    from journeys.models import JourneyRun
    from journeys.services import RunNotLive

    props = props or {}
    spec = get_template(template)
    category = category or spec.category
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
            status = JourneyRun.objects.select_for_update().filter(pk=run_id).values_list("status", flat=True).first()
            if status not in JourneyRun.LIVE_STATUSES:
                raise RunNotLive(run_id, status or "gone")
        contact = Contact.objects.filter(user_id=user_id).first() if user_id else None
        block = None if skip_preference_check else _consent_block(to=to, contact=contact, category=category)
        if block is None and journey_id and suppress_seconds > 0 and contact is not None:
            recent = EmailLog.objects.filter(
                contact=contact,
                run__journey_id=journey_id,
                sent_at__gte=now - timezone.timedelta(seconds=suppress_seconds),
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
                "created_at": now,
            },
        )
    if not created or log.status != Status.QUEUED:
        return log
    return _deliver(log)


def _deliver(log: EmailLog) -> EmailLog:
    try:
        rendered = email_render(template=log.template, props=log.props, subject=log.subject)
        message = EmailMultiAlternatives(
            subject=rendered.subject,
            body=rendered.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[log.to_email],
            headers={"X-Hogsend-Email-Id": str(log.id)},
        )
        message.attach_alternative(rendered.html, "text/html")
        message.send()
    except Exception as error:  # noqa: BLE001 - recorded on the log, surfaced in Studio
        logger.warning("email %s to %s failed: %s", log.template, log.to_email, error)
        EmailLog.objects.filter(pk=log.pk).update(
            status=Status.FAILED, status_reason=str(error)[:2000], updated_at=timezone.now()
        )
        log.refresh_from_db()
        return log
    status = getattr(message, "anymail_status", None)
    provider_id = getattr(status, "message_id", None) or ""
    EmailLog.objects.filter(pk=log.pk).update(
        status=Status.SENT, sent_at=timezone.now(), provider_message_id=provider_id, updated_at=timezone.now()
    )
    log.refresh_from_db()
    return log
