"""Provider webhooks: only the configured provider's endpoint answers, and never without a secret.

An unverified complaint would let anyone on the web suppress any address, so each case below posts
what a forger would: a well-formed complaint for a victim, without (or with the wrong) signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from contacts.models import Suppression
from emails.models import ProcessedWebhook

pytestmark = pytest.mark.django_db

VICTIM = "victim@example.com"
BASIC = "hooks:a-long-random-password"
MAILGUN_KEY = "mailgun-webhook-signing-key"
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-test-signing-key-32bytes!").decode()


def basic_auth(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def postmark_complaint(**headers):
    body = {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "MessageID": str(uuid.uuid4()),
        "Email": VICTIM,
        "BouncedAt": "2026-11-20T16:09:19Z",
        "Metadata": {},
    }
    return "/anymail/postmark/tracking/", json.dumps(body), headers


def sendgrid_complaint(**headers):
    body = [
        {
            "email": VICTIM,
            "event": "spamreport",
            "timestamp": int(time.time()),
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": uuid.uuid4().hex,
        }
    ]
    return "/anymail/sendgrid/tracking/", json.dumps(body), headers


def resend_complaint(**headers):
    body = {
        "type": "email.complained",
        "created_at": "2026-11-20T16:09:19Z",
        "data": {"email_id": str(uuid.uuid4()), "to": [VICTIM], "subject": "Hi"},
    }
    return "/anymail/resend/tracking/", json.dumps(body), headers


def mailgun_event(event: str = "complained", *, key: str = MAILGUN_KEY):
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {"event": event, "timestamp": time.time(), "recipient": VICTIM, "id": token},
    }
    return "/anymail/mailgun/tracking/", json.dumps(body), {}


def post(client, request):
    path, body, headers = request
    return client.post(path, body, content_type="application/json", headers=headers)


def nothing_suppressed() -> bool:
    return not Suppression.objects.exists() and not ProcessedWebhook.objects.exists()


@pytest.mark.parametrize(
    ("provider", "forgery"),
    [("postmark", postmark_complaint), ("sendgrid", sendgrid_complaint), ("resend", resend_complaint)],
)
def test_an_unsigned_complaint_is_refused_while_the_providers_secret_is_unset(
    client, settings, provider, forgery
):
    settings.EMAIL_PROVIDER = provider
    settings.ANYMAIL = {}

    response = post(client, forgery())

    assert response.status_code == 403
    assert "set " in response.json()["detail"]
    assert nothing_suppressed()


def test_a_resend_deployment_with_only_basic_auth_still_refuses_unsigned_complaints(client, settings):
    # Basic auth alone is a shared password in a URL; Resend's svix signature is the real check.
    settings.EMAIL_PROVIDER = "resend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC}

    response = post(client, resend_complaint(Authorization=basic_auth(BASIC)))

    assert response.status_code == 403
    assert "RESEND_SIGNING_SECRET" in response.json()["detail"]
    assert nothing_suppressed()


@pytest.mark.parametrize("forgery", [postmark_complaint, sendgrid_complaint, mailgun_event])
def test_with_resend_configured_the_other_providers_endpoints_do_not_exist(client, settings, forgery):
    settings.EMAIL_PROVIDER = "resend"
    settings.ANYMAIL = {"RESEND_SIGNING_SECRET": RESEND_SECRET}

    assert post(client, forgery()).status_code == 404
    assert nothing_suppressed()


@pytest.mark.parametrize("provider", ["console", "smtp"])
def test_without_a_tracking_provider_no_webhook_endpoint_exists(client, settings, provider):
    settings.EMAIL_PROVIDER = provider
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC}

    for forgery in (postmark_complaint, sendgrid_complaint, resend_complaint, mailgun_event):
        assert post(client, forgery()).status_code == 404
    assert nothing_suppressed()


def test_mailgun_without_its_signing_key_refuses_deliveries_instead_of_failing(client, settings):
    settings.EMAIL_PROVIDER = "mailgun"
    settings.ANYMAIL = {"MAILGUN_API_KEY": "key-api"}

    response = post(client, mailgun_event())

    assert response.status_code == 403
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in response.json()["detail"]
    assert nothing_suppressed()


def test_a_correctly_signed_mailgun_complaint_suppresses_and_a_forged_one_does_not(client, settings):
    settings.EMAIL_PROVIDER = "mailgun"
    settings.ANYMAIL = {"MAILGUN_API_KEY": "key-api", "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}

    assert post(client, mailgun_event(key="guessed")).status_code == 400
    assert nothing_suppressed()

    assert post(client, mailgun_event()).status_code == 200
    assert Suppression.objects.get(email=VICTIM).reason == Suppression.Reason.COMPLAINT


def test_a_sendgrid_complaint_with_the_right_basic_auth_suppresses_and_a_wrong_one_does_not(client, settings):
    settings.EMAIL_PROVIDER = "sendgrid"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.x", "WEBHOOK_SECRET": BASIC}

    assert post(client, sendgrid_complaint(Authorization=basic_auth("hooks:guess"))).status_code == 400
    assert nothing_suppressed()

    assert post(client, sendgrid_complaint(Authorization=basic_auth(BASIC))).status_code == 200
    assert Suppression.objects.get(email=VICTIM).reason == Suppression.Reason.COMPLAINT


def test_a_signed_delivery_with_a_malformed_body_is_a_400_not_a_500(client, settings):
    settings.EMAIL_PROVIDER = "sendgrid"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.x", "WEBHOOK_SECRET": BASIC}

    response = client.post(
        "/anymail/sendgrid/tracking/",
        "{not json",
        content_type="application/json",
        headers={"Authorization": basic_auth(BASIC)},
    )

    assert response.status_code == 400
