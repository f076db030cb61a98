"""`POST /v1/emails`: a transactional send through the same pipeline journeys use (admin scope)."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest
from ninja import Router
from ninja.errors import HttpError

from contacts.addresses import EmailError, email_address_check
from contacts.auth import admin_auth
from contacts.categories import TRANSACTIONAL
from emails.delivery import EmailDeliveryDeferred, email_deliver
from emails.models import EmailLog
from emails.registry import UnknownTemplate, get_template
from emails.render import email_render
from emails.schemas import EmailSendIn, EmailSendOut, EmailStatusOut
from emails.services import email_send

router = Router(tags=["emails"])


@router.post("/emails", auth=admin_auth, response={202: EmailSendOut, 200: EmailSendOut})
def email_create(request: HttpRequest, payload: EmailSendIn):
    """Send one transactional email. `idempotencyKey` is required: a repeat answers 200 with the
    first result and sends nothing. Suppressed or unsubscribed recipients are not mailed (status
    `suppressed`)."""
    key = f"api:{payload.idempotencyKey}"
    first = EmailLog.objects.filter(idempotency_key=key).first()
    if first is not None:
        if first.status == EmailLog.Status.QUEUED:  # the first request died before the provider
            first = _deliver_left_behind(first)
        return 200, _out(first, duplicate=True)
    try:
        get_template(payload.template)
        email_address_check(payload.to)
        email_render(
            template=payload.template, props=payload.props, subject=payload.subject
        )  # props complete?
        log = email_send(
            to=payload.to,
            template=payload.template,
            subject=payload.subject,
            props=payload.props,
            user_id=payload.userId,
            category=TRANSACTIONAL,
            idempotency_key=key,
        )
    except UnknownTemplate as error:
        raise HttpError(422, str(error)) from None
    except EmailError as error:
        raise HttpError(422, str(error)) from None
    return 202, _out(log, duplicate=False)


def _deliver_left_behind(log: EmailLog) -> EmailLog:
    try:
        return email_deliver(email_id=log.pk)
    except EmailDeliveryDeferred:  # queued with the reason; the retry task or the sweep sends it
        return EmailLog.objects.get(pk=log.pk)


@router.get("/emails/{email_id}", auth=admin_auth, response=EmailStatusOut)
def email_status(request: HttpRequest, email_id: UUID):
    """An email's status: `held` with `heldUntil` while the send-time policy holds it, then
    queued, sent, delivered, ... with the reason beside it."""
    log = EmailLog.objects.filter(pk=email_id).first()
    if log is None:
        raise HttpError(404, f"no email with id {email_id}")
    return {
        "emailId": log.id,
        "to": log.to_email,
        "template": log.template,
        "category": log.category,
        "status": log.status,
        "reason": log.status_reason,
        "heldUntil": _held_until(log),
        "createdAt": log.created_at,
        "sentAt": log.sent_at,
    }


def _held_until(log: EmailLog):
    return log.held_until if log.status == EmailLog.Status.HELD else None


def _out(log: EmailLog, *, duplicate: bool) -> dict:
    return {
        "emailId": log.id,
        "status": log.status,
        "reason": log.status_reason,
        "duplicate": duplicate,
        "heldUntil": _held_until(log),
    }
