"""Provider tracking webhooks → the email log and the suppression list.

Only the configured provider's endpoint (EMAIL_PROVIDER) answers; every other provider's is a 404.
It refuses every delivery (403) while its verification secret is unset, rather than accept unsigned
complaints that would suppress any address. anymail then verifies the signature (Resend: svix;
Mailgun: HMAC; SendGrid: ECDSA or basic auth; Postmark and SES: basic auth) and normalizes the event
into its `tracking` signal; `email_tracking_event_apply` does the rest. Each provider event id is
stored once (ProcessedWebhook), so a redelivered webhook changes nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking
from django.conf import settings
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from contacts.models import Suppression
from contacts.suppressions import suppression_create
from emails.models import EmailLog, ProcessedWebhook
from emails.provider_config import TRACKING_WEBHOOKS
from emails.status import Status, email_stamp_first, email_status_advance

logger = logging.getLogger(__name__)
Kind = ProcessedWebhook.Kind


def _kind(event: AnymailTrackingEvent, esp_name: str) -> str:
    raw: Any = event.esp_event if isinstance(event.esp_event, dict) else {}
    if event.event_type == EventType.COMPLAINED:
        return Kind.COMPLAINT
    if event.event_type == EventType.DELIVERED:
        return Kind.DELIVERED
    if event.event_type == EventType.OPENED:
        return Kind.OPENED
    if event.event_type == EventType.CLICKED:
        return Kind.CLICKED
    if event.event_type == EventType.BOUNCED:
        if esp_name == "Postmark":
            # anymail maps Postmark's SoftBounce to "bounced" too; only a HardBounce is permanent.
            return Kind.PERMANENT_BOUNCE if raw.get("Type") == "HardBounce" else Kind.TRANSIENT_BOUNCE
        if esp_name == "Resend":
            bounce = (raw.get("data") or {}).get("bounce") or {}
            return Kind.TRANSIENT_BOUNCE if bounce.get("type") == "Transient" else Kind.PERMANENT_BOUNCE
        return (
            Kind.PERMANENT_BOUNCE
            if event.reject_reason in (RejectReason.BOUNCED, RejectReason.INVALID)
            else Kind.TRANSIENT_BOUNCE
        )
    if event.event_type == EventType.REJECTED and event.reject_reason == RejectReason.INVALID:
        return Kind.PERMANENT_BOUNCE
    return Kind.OTHER


def _event_id(event: AnymailTrackingEvent, esp_name: str) -> str:
    if event.event_id:
        return f"{esp_name}:{event.event_id}"
    # Some provider events (Postmark deliveries, opens) carry no id: their content identifies them.
    basis = f"{event.event_type}|{event.message_id}|{event.recipient}|{event.timestamp}"
    return f"{esp_name}:sha256:{hashlib.sha256(basis.encode()).hexdigest()}"


def _find_log(event: AnymailTrackingEvent) -> EmailLog | None:
    if event.message_id:
        log = EmailLog.objects.filter(provider_message_id=event.message_id).first()
        if log is not None:
            return log
    email_id = (event.metadata or {}).get("email_id")
    if email_id:
        try:
            return EmailLog.objects.filter(pk=email_id).first()
        except Exception:
            return None
    return None


def email_tracking_event_apply(*, event: AnymailTrackingEvent, esp_name: str) -> bool:
    """Apply one provider event. Returns False if it was seen before (nothing changes).

    1. Claim the event id (unique row); a duplicate ends here.
    2. Find the log by provider message id (or our email id in the metadata).
    3. Delivered/opened/clicked: stamp the first time, advance the status if it moves forward.
    4. Permanent bounce: mark bounced; at EMAIL_BOUNCE_SUPPRESS_THRESHOLD permanent bounces since
       the address last took a delivery, suppress it. Complaint: mark complained, suppress at once.
    """
    kind = _kind(event, esp_name)
    log = _find_log(event)
    recipient = (event.recipient or (log.to_email if log else "") or "").strip().lower()
    at = event.timestamp or timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProcessedWebhook.objects.create(
                    event_id=_event_id(event, esp_name)[:255],
                    esp=esp_name,
                    kind=kind,
                    recipient=recipient,
                    provider_message_id=event.message_id or "",
                    email=log,
                )
        except IntegrityError:
            return False
        reason = event.description or event.mta_response or ""
        if log is not None:
            if kind == Kind.DELIVERED:
                email_stamp_first(email_id=log.pk, field="delivered_at", at=at)
                email_status_advance(email_id=log.pk, to=Status.DELIVERED)
            elif kind == Kind.OPENED:
                email_stamp_first(email_id=log.pk, field="opened_at", at=at)
                email_status_advance(email_id=log.pk, to=Status.OPENED)
            elif kind == Kind.CLICKED:
                email_stamp_first(email_id=log.pk, field="clicked_at", at=at)
                email_status_advance(email_id=log.pk, to=Status.CLICKED)
            elif kind == Kind.PERMANENT_BOUNCE:
                email_stamp_first(email_id=log.pk, field="bounced_at", at=at)
                email_status_advance(email_id=log.pk, to=Status.BOUNCED, reason=reason or "bounced")
            elif kind == Kind.COMPLAINT:
                email_stamp_first(email_id=log.pk, field="complained_at", at=at)
                email_status_advance(email_id=log.pk, to=Status.COMPLAINED, reason=reason or "spam complaint")
        if recipient and kind == Kind.COMPLAINT:
            suppression_create(
                email=recipient, reason=Suppression.Reason.COMPLAINT, note=f"{esp_name} spam complaint"
            )
        if recipient and kind == Kind.PERMANENT_BOUNCE:
            bounces = address_permanent_bounce_count(email=recipient)
            if bounces >= settings.EMAIL_BOUNCE_SUPPRESS_THRESHOLD:
                suppression_create(
                    email=recipient,
                    reason=Suppression.Reason.BOUNCE,
                    note=f"{bounces} permanent bounces ({esp_name}); last: {reason}"[:1000],
                )
    return True


def address_permanent_bounce_count(*, email: str) -> int:
    """Permanent bounces of an address since it last took a delivery."""
    seen = ProcessedWebhook.objects.filter(recipient__iexact=email)
    last_delivery = (
        seen.filter(kind=Kind.DELIVERED)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    bounces = seen.filter(kind=Kind.PERMANENT_BOUNCE)
    if last_delivery is not None:
        bounces = bounces.filter(received_at__gt=last_delivery)
    return bounces.count()


@receiver(tracking, dispatch_uid="hogsend.emails.tracking")
def _on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    applied = email_tracking_event_apply(event=event, esp_name=esp_name)
    if not applied:
        logger.info("ignored a redelivered %s webhook %s", esp_name, event.event_id)


_TRACKING_VIEWS = {
    "resend": "anymail.webhooks.resend.ResendTrackingWebhookView",
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "ses": "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
}


def tracking_webhook_missing_secrets(provider: str) -> list[str]:
    """The settings of which one must be set before `provider`'s webhook accepts anything ([] = ready)."""
    _, secrets = TRACKING_WEBHOOKS[provider]
    anymail = getattr(settings, "ANYMAIL", {}) or {}
    return [] if any(anymail.get(name) for name in secrets) else list(secrets)


@csrf_exempt
def provider_tracking_webhook(request: HttpRequest, segment: str) -> HttpResponse:
    """`/anymail/<provider>/tracking/`, live only for EMAIL_PROVIDER and only once it can verify."""
    provider = (getattr(settings, "EMAIL_PROVIDER", "") or "").strip().lower()
    if provider not in TRACKING_WEBHOOKS or TRACKING_WEBHOOKS[provider][0] != segment:
        raise Http404("no tracking webhook for this provider; EMAIL_PROVIDER names the one that answers")
    missing = tracking_webhook_missing_secrets(provider)
    if missing:
        logger.warning("refused a %s webhook: set %s to verify deliveries", provider, " or ".join(missing))
        return JsonResponse(
            {
                "detail": f"webhook verification is not configured; set {' or '.join(missing)} "
                "and give the provider the matching secret"
            },
            status=403,
        )
    view = import_string(_TRACKING_VIEWS[provider]).as_view()
    try:
        return view(request)
    except (ValueError, KeyError, TypeError) as error:
        # Verified, but not a shape the provider sends (JSONDecodeError is a ValueError): the
        # sender's mistake, not ours; a 500 would have the provider retry it forever.
        logger.warning("unreadable %s webhook body: %r", provider, error)
        return JsonResponse({"detail": f"unreadable {provider} webhook body"}, status=400)
