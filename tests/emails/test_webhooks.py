"""Provider webhooks in each provider's real format and signature scheme, through anymail's URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.utils import timezone

from contacts.models import Suppression
from emails.models import EmailLog, ProcessedWebhook

pytestmark = pytest.mark.django_db
Status = EmailLog.Status
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-test-signing-key-32bytes!").decode()
POSTMARK_AUTH = "hooks:s3cret-pass"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {"RESEND_SIGNING_SECRET": RESEND_SECRET, "WEBHOOK_SECRET": POSTMARK_AUTH}
    settings.EMAIL_BOUNCE_SUPPRESS_THRESHOLD = 3
    # Each helper below posts as the deployment configured for that provider (one at a time).
    _configured["settings"] = settings
    yield settings
    _configured.clear()


_configured: dict = {}


def configure_provider(provider: str) -> None:
    _configured["settings"].EMAIL_PROVIDER = provider


def sent_log(to: str = "ada@example.com", provider_id: str | None = None) -> EmailLog:
    return EmailLog.objects.create(
        to_email=to,
        template="activation/welcome",
        subject="Hi",
        category="journey",
        status=Status.SENT,
        idempotency_key=str(uuid.uuid4()),
        provider_message_id=provider_id or str(uuid.uuid4()),
        created_at=timezone.now(),
        sent_at=timezone.now(),
    )


def basic_auth(credentials: str = POSTMARK_AUTH) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def post_resend(client, event: dict, *, svix_id: str | None = None, secret: str = RESEND_SECRET):
    """Sign the body as Svix does: base64(HMAC-SHA256(key, "id.timestamp.body")), key = base64-decoded whsec_."""
    configure_provider("resend")
    body = json.dumps(event)
    svix_id = svix_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(
        hmac.new(key, f"{svix_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    )
    return client.post(
        "/anymail/resend/tracking/",
        body,
        content_type="application/json",
        headers={
            "svix-id": svix_id,
            "svix-timestamp": timestamp,
            "svix-signature": f"v1,{signature.decode()}",
            "Authorization": basic_auth(),
        },
    )


def resend_event(kind: str, log: EmailLog, **data) -> dict:
    return {
        "type": kind,
        "created_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "data": {
            "created_at": timezone.now().isoformat(),
            "email_id": log.provider_message_id,
            "from": "Hogsend <hello@example.com>",
            "to": [log.to_email],
            "subject": log.subject,
            **data,
        },
    }


def resend_bounce(log: EmailLog, bounce_type: str = "Permanent") -> dict:
    return resend_event(
        "email.bounced",
        log,
        bounce={
            "message": "The recipient's email provider sent a hard bounce message, so we've stopped sending to it.",
            "subType": "General",
            "type": bounce_type,
        },
    )


def post_postmark(client, event: dict, *, auth: str = POSTMARK_AUTH):
    configure_provider("postmark")
    return client.post(
        "/anymail/postmark/tracking/",
        json.dumps(event),
        content_type="application/json",
        headers={"Authorization": basic_auth(auth)},
    )


def postmark_bounce(log: EmailLog, *, event_id: int, kind: str = "HardBounce") -> dict:
    return {
        "RecordType": "Bounce",
        "ID": event_id,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "Name": "Hard bounce",
        "Tag": "",
        "MessageID": log.provider_message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": log.to_email,
        "From": "hello@example.com",
        "BouncedAt": "2026-11-20T16:09:19Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": log.subject,
        "Metadata": {"email_id": str(log.pk)},
    }


# --- Resend (svix signatures) -------------------------------------------------------------------


def test_a_resend_delivery_marks_the_email_delivered(client):
    log = sent_log()
    response = post_resend(client, resend_event("email.delivered", log))
    assert response.status_code == 200
    log.refresh_from_db()
    assert log.status == Status.DELIVERED
    assert log.delivered_at is not None


def test_a_resend_webhook_with_a_bad_signature_is_rejected_and_changes_nothing(client):
    log = sent_log()
    forged = "whsec_" + base64.b64encode(b"not-the-real-key-at-all-32bytes!").decode()
    response = post_resend(client, resend_event("email.complained", log), secret=forged)
    assert response.status_code == 400
    log.refresh_from_db()
    assert log.status == Status.SENT
    assert not Suppression.objects.exists()


def test_a_resend_complaint_suppresses_the_address_at_once(client):
    log = sent_log(to="angry@example.com")
    assert post_resend(client, resend_event("email.complained", log)).status_code == 200
    log.refresh_from_db()
    assert log.status == Status.COMPLAINED
    assert Suppression.objects.get(email="angry@example.com").reason == Suppression.Reason.COMPLAINT


def test_permanent_resend_bounces_suppress_the_address_at_the_threshold(client):
    logs = [sent_log(to="gone@example.com") for _ in range(3)]
    post_resend(client, resend_bounce(logs[0]))
    post_resend(client, resend_bounce(logs[1]))
    assert not Suppression.objects.filter(email="gone@example.com").exists()

    post_resend(client, resend_bounce(logs[2]))

    suppression = Suppression.objects.get(email="gone@example.com")
    assert suppression.reason == Suppression.Reason.BOUNCE
    assert "3 permanent bounces" in suppression.note
    assert {log.status for log in EmailLog.objects.filter(to_email="gone@example.com")} == {Status.BOUNCED}


def test_transient_resend_bounces_never_count_toward_suppression(client):
    for _ in range(4):
        post_resend(client, resend_bounce(sent_log(to="full@example.com"), bounce_type="Transient"))
    assert not Suppression.objects.exists()


def test_a_redelivered_resend_webhook_changes_nothing_twice(client):
    logs = [sent_log(to="twice@example.com") for _ in range(3)]
    post_resend(client, resend_bounce(logs[0]), svix_id="msg_same")
    post_resend(client, resend_bounce(logs[1]), svix_id="msg_other")
    # Svix retries the first delivery (same svix-id, fresh timestamp and signature).
    response = post_resend(client, resend_bounce(logs[0]), svix_id="msg_same")

    assert response.status_code == 200
    assert ProcessedWebhook.objects.count() == 2
    assert not Suppression.objects.exists()  # two bounces, not three


def test_a_late_delivered_webhook_does_not_move_an_opened_email_backwards(client):
    log = sent_log()
    log.status, log.opened_at = Status.OPENED, timezone.now()
    log.save()
    post_resend(client, resend_event("email.delivered", log))
    log.refresh_from_db()
    assert log.status == Status.OPENED
    assert log.delivered_at is not None  # the fact is kept, the status is not rewound


# --- Postmark (basic auth) ---------------------------------------------------------------------


def test_a_postmark_webhook_without_the_right_basic_auth_is_rejected(client):
    log = sent_log()
    response = post_postmark(client, postmark_bounce(log, event_id=1), auth="hooks:wrong")
    assert response.status_code == 400
    assert not ProcessedWebhook.objects.exists()


def test_postmark_hard_bounces_suppress_at_the_threshold_and_redelivery_is_ignored(client):
    logs = [sent_log(to="bounce@example.com") for _ in range(3)]
    assert post_postmark(client, postmark_bounce(logs[0], event_id=101)).status_code == 200
    post_postmark(client, postmark_bounce(logs[0], event_id=101))  # redelivered
    post_postmark(client, postmark_bounce(logs[1], event_id=102))
    assert not Suppression.objects.exists()

    post_postmark(client, postmark_bounce(logs[2], event_id=103))

    assert Suppression.objects.get(email="bounce@example.com").reason == Suppression.Reason.BOUNCE
    logs[0].refresh_from_db()
    assert logs[0].status == Status.BOUNCED
    assert "unable to deliver" in logs[0].status_reason


def test_postmark_soft_bounces_do_not_suppress(client):
    for n in range(4):
        post_postmark(
            client, postmark_bounce(sent_log(to="soft@example.com"), event_id=200 + n, kind="SoftBounce")
        )
    assert not Suppression.objects.exists()
    assert not EmailLog.objects.filter(status=Status.BOUNCED).exists()


def test_a_delivery_between_bounces_resets_the_count(client):
    logs = [sent_log(to="flaky@example.com") for _ in range(4)]
    post_postmark(client, postmark_bounce(logs[0], event_id=301))
    post_postmark(client, postmark_bounce(logs[1], event_id=302))
    post_postmark(
        client,
        {
            "RecordType": "Delivery",
            "MessageID": logs[3].provider_message_id,
            "Recipient": "flaky@example.com",
            "DeliveredAt": "2026-11-20T16:10:00Z",
            "Details": "250 OK",
            "Tag": "",
            "ServerID": 23,
            "Metadata": {},
        },
    )
    post_postmark(client, postmark_bounce(logs[2], event_id=303))
    assert not Suppression.objects.exists()


def test_a_postmark_spam_complaint_suppresses_at_once(client):
    log = sent_log(to="spam@example.com")
    event = {**postmark_bounce(log, event_id=401, kind="SpamComplaint"), "RecordType": "SpamComplaint"}
    assert post_postmark(client, event).status_code == 200
    assert Suppression.objects.get(email="spam@example.com").reason == Suppression.Reason.COMPLAINT
    log.refresh_from_db()
    assert log.status == Status.COMPLAINED


def test_provider_bounces_and_complaints_are_in_the_consent_ledger(client):
    from contacts.models import ConsentChange, Contact

    gone = Contact.objects.create(user_id="gone", email="gone@example.com")
    angry = Contact.objects.create(user_id="angry", email="angry@example.com")
    for _ in range(3):
        post_resend(client, resend_bounce(sent_log(to="gone@example.com")))
    post_resend(client, resend_event("email.complained", sent_log(to="angry@example.com")))

    [bounce] = ConsentChange.objects.filter(contact=gone)
    assert (bounce.kind, bounce.source, bounce.detail["reason"]) == ("suppressed", "bounce", "bounce")
    [complaint] = ConsentChange.objects.filter(contact=angry)
    assert (complaint.kind, complaint.source) == ("suppressed", "complaint")
