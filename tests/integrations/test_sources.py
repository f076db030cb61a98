"""Inbound webhook sources: each preset turns a recorded, provider-signed payload into events through
the ingest pipeline; bad signatures are refused and stored nowhere; redeliveries change nothing."""

from __future__ import annotations

import json
import time

import pytest

from contacts.models import Contact, Event
from integrations.models import WebhookDelivery, WebhookSourceState
from integrations.selectors import sources_overview
from integrations.sources import HmacSignature, SharedSecret, define_webhook_source, json_mapping
from tests.integrations.conftest import (
    POSTHOG_SECRET,
    payload,
    segment_headers,
    stripe_headers,
    svix_headers,
)

pytestmark = pytest.mark.django_db


def test_stripe_invoice_payment_failed_becomes_payment_failed_for_the_subscriptions_user(post_webhook):
    body = payload("stripe_invoice_payment_failed")
    response = post_webhook("stripe", body, stripe_headers(body))

    assert response.status_code == 200, response.body_json
    event = Event.objects.select_related("contact").get()
    assert event.name == "payment.failed"
    assert event.contact.user_id == "user-42"
    assert event.contact.email == "ada@example.com"
    assert event.properties["amount_due"] == 4900
    assert event.properties["attempt_count"] == 2
    assert event.properties["stripe_event_id"] == "evt_1QBzXsLkdIwHu7ixg4lQ3xPe"
    assert event.source == "webhook"
    assert event.occurred_at.timestamp() == 1729512000
    assert response.body_json["eventIds"] == [str(event.id)]


def test_stripe_subscription_deleted_becomes_subscription_cancelled_with_the_plan(post_webhook):
    body = payload("stripe_subscription_deleted")
    assert post_webhook("stripe", body, stripe_headers(body)).status_code == 200

    event = Event.objects.get()
    assert (event.name, event.contact.user_id) == ("subscription.cancelled", "user-42")
    assert event.properties["plan"] == "pro_monthly"
    assert event.properties["status"] == "canceled"


def test_stripe_checkout_completed_reaches_the_user_your_checkout_page_named(post_webhook):
    body = payload("stripe_checkout_session_completed")
    assert post_webhook("stripe", body, stripe_headers(body)).status_code == 200

    event = Event.objects.select_related("contact").get()
    assert (event.name, event.contact.user_id) == ("checkout.completed", "user-77")
    assert event.contact.email == "barbara@example.com"
    assert (event.properties["amount_total"], event.properties["mode"]) == (4900, "subscription")


def test_a_stripe_event_type_without_a_mapping_is_acknowledged_and_ignored(post_webhook):
    body = payload("stripe_charge_refunded")
    response = post_webhook("stripe", body, stripe_headers(body))

    assert response.status_code == 200
    assert not Event.objects.exists()
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.IGNORED


def test_a_redelivered_stripe_event_is_a_no_op(post_webhook):
    body = payload("stripe_invoice_payment_failed")
    first = post_webhook("stripe", body, stripe_headers(body))
    again = post_webhook("stripe", body, stripe_headers(body, at=int(time.time()) + 5))

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.body_json["duplicate"] is True
    assert Event.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="unsigned"),
        pytest.param({"Stripe-Signature": "t=1,v1=deadbeef"}, id="garbage"),
        pytest.param("wrong-secret", id="signed-with-another-secret"),
        pytest.param("stale", id="signed-ten-minutes-ago"),
        pytest.param("tampered", id="body-changed-after-signing"),
    ],
)
def test_stripe_deliveries_that_fail_verification_get_401_and_are_never_stored(post_webhook, headers):
    body = payload("stripe_invoice_payment_failed")
    if headers == "wrong-secret":
        headers = stripe_headers(body, secret="whsec_someone_else")
    elif headers == "stale":
        headers = stripe_headers(body, at=int(time.time()) - 600)
    elif headers == "tampered":
        headers = stripe_headers(body)
        body = body.replace(b"4900", b"1")

    response = post_webhook("stripe", body, headers)

    assert response.status_code == 401
    assert not Event.objects.exists()
    assert not Contact.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert WebhookSourceState.objects.get(source_id="stripe").refused_count == 1


def test_clerk_user_created_creates_the_contact_with_its_primary_email_and_name(post_webhook):
    body = payload("clerk_user_created")
    response = post_webhook("clerk", body, svix_headers(body, msg_id="msg_2Lh9KRb6pHtqC0yj5TEvQs4Bvgo"))

    assert response.status_code == 200, response.body_json
    event = Event.objects.select_related("contact").get()
    assert event.name == "user.created"
    contact = event.contact
    assert contact.user_id == "user_29w83sxmDNGwOuEthce5gg56FcC"
    assert contact.email == "grace@example.org"
    assert contact.properties == {"first_name": "Grace", "last_name": "Hopper"}
    assert event.idempotency_key == "clerk:msg_2Lh9KRb6pHtqC0yj5TEvQs4Bvgo:0"


def test_a_clerk_delivery_redelivered_by_svix_is_a_no_op(post_webhook):
    body = payload("clerk_user_created")
    for _ in range(2):
        assert post_webhook("clerk", body, svix_headers(body, msg_id="msg_same")).status_code == 200
    assert Event.objects.count() == 1


def test_a_clerk_delivery_with_a_stale_or_foreign_svix_signature_is_refused(post_webhook):
    body = payload("clerk_user_created")
    stale = svix_headers(body, msg_id="msg_1", at=int(time.time()) - 3600)
    foreign = svix_headers(body, msg_id="msg_2", secret="whsec_" + "QUJDREVGR0hJSktMTU5PUA==")

    assert post_webhook("clerk", body, stale).status_code == 401
    assert post_webhook("clerk", body, foreign).status_code == 401
    assert not Event.objects.exists()


def test_segment_track_becomes_an_event_of_the_same_name(post_webhook):
    body = payload("segment_track")
    assert post_webhook("segment", body, segment_headers(body)).status_code == 200

    event = Event.objects.select_related("contact").get()
    assert (event.name, event.contact.user_id) == ("Order Completed", "user-7")
    assert event.properties == {"order_id": "50314b8e9bcf000000000000", "total": 27.5, "currency": "USD"}
    assert event.contact.email == "linus@example.com"


def test_segment_identify_merges_traits_into_the_contact(post_webhook):
    body = payload("segment_identify")
    assert post_webhook("segment", body, segment_headers(body)).status_code == 200

    contact = Contact.objects.get(user_id="user-7")
    assert contact.email == "linus@example.com"
    assert contact.properties == {"name": "Linus Torvalds", "plan": "team"}
    assert Event.objects.get().name == "user.identified"


def test_segment_refuses_a_body_whose_x_signature_does_not_match(post_webhook):
    body = payload("segment_track")
    assert post_webhook("segment", body, segment_headers(b"{}")).status_code == 401
    assert not Event.objects.exists()


def test_posthog_webhook_destination_payload_becomes_the_captured_event(post_webhook):
    body = payload("posthog_event")
    response = post_webhook("posthog", body, {"Authorization": f"Bearer {POSTHOG_SECRET}"})

    assert response.status_code == 200, response.body_json
    event = Event.objects.select_related("contact").get()
    assert (event.name, event.contact.user_id) == ("feature_used", "user-99")
    assert event.contact.email == "margaret@example.com"
    assert event.properties["feature"] == "reports"
    assert "$set" not in event.properties
    assert event.idempotency_key == "posthog:0192b0a3-5e1f-7c2d-9a8b-3f4e5d6c7b8a"


def test_posthog_without_the_shared_secret_is_refused(post_webhook):
    body = payload("posthog_event")
    assert post_webhook("posthog", body, {"Authorization": "Bearer guess"}).status_code == 401
    assert post_webhook("posthog", body).status_code == 401


def test_a_source_without_a_secret_refuses_everything_and_says_what_to_set(post_webhook, settings):
    settings.WEBHOOK_SECRETS = {}
    body = payload("stripe_invoice_payment_failed")

    response = post_webhook("stripe", body, stripe_headers(body))

    assert response.status_code == 403
    assert "WEBHOOK_SECRETS" in response.body_json["detail"]
    assert not Event.objects.exists()


def test_an_unknown_source_is_404(post_webhook):
    assert post_webhook("nope", b"{}").status_code == 404


def test_a_generic_json_source_maps_fields_by_path_and_verifies_a_prefixed_hmac(post_webhook):
    import hashlib
    import hmac

    define_webhook_source(
        "billing-test",
        verify=HmacSignature(header="X-Billing-Signature", prefix="sha256=", secret="s3cret"),
        map=json_mapping(
            name="type",
            user_id="data.account.owner_id",
            email="data.account.email",
            properties="data.invoice",
            occurred_at="created_at",
            event_id="id",
        ),
        delivery_id_path="id",
    )
    body = json.dumps(
        {
            "id": "whevt_881",
            "type": "invoice.overdue",
            "created_at": "2026-11-20T08:00:00Z",
            "data": {
                "account": {"owner_id": "user-5", "email": "kay@example.com"},
                "invoice": {"number": "INV-7", "days_overdue": 3},
            },
        }
    ).encode()
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

    response = post_webhook("billing-test", body, {"X-Billing-Signature": signature})

    assert response.status_code == 200, response.body_json
    event = Event.objects.select_related("contact").get()
    assert (event.name, event.contact.user_id, event.contact.email) == (
        "invoice.overdue",
        "user-5",
        "kay@example.com",
    )
    assert event.properties == {"number": "INV-7", "days_overdue": 3}
    assert event.idempotency_key == "billing-test:whevt_881"
    assert post_webhook("billing-test", body, {"X-Billing-Signature": "sha256=00"}).status_code == 401


def test_a_delivery_the_pipeline_refuses_is_recorded_failed_and_can_be_redelivered(post_webhook):
    define_webhook_source(
        "shared-test",
        verify=SharedSecret(header="X-Token", scheme="", secret="tok"),
        map=json_mapping(name="name", user_id="user"),
    )
    too_long = json.dumps({"id": "a", "name": "x" * 300, "user": "u1"}).encode()

    refused = post_webhook("shared-test", too_long, {"X-Token": "tok"})

    assert refused.status_code == 422
    assert "at most 255" in refused.body_json["detail"]
    assert not Event.objects.exists() and not Contact.objects.exists()
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.FAILED


def test_the_studio_overview_shows_each_source_with_url_last_delivery_failures_and_samples(
    post_webhook, settings
):
    settings.PUBLIC_BASE_URL = "https://hogsend.example.com"
    body = payload("stripe_invoice_payment_failed")
    post_webhook("stripe", body, stripe_headers(body))
    post_webhook("stripe", body, {"Stripe-Signature": "t=1,v1=00"})

    stripe = {s.id: s for s in sources_overview()}["stripe"]

    assert stripe.url == "https://hogsend.example.com/v1/webhooks/stripe"
    assert stripe.configured and stripe.accepted == 1 and stripe.refused == 1
    assert stripe.last_delivery_at is not None
    assert "invoice.payment_failed" in stripe.recent[0].body


def test_the_readme_generic_source_from_settings_accepts_an_openssl_signed_delivery(post_webhook, settings):
    import hashlib
    import hmac

    settings.WEBHOOK_GENERIC_SOURCES = {
        "billing": {
            "verify": "hmac",
            "header": "X-Signature",
            "prefix": "sha256=",
            "name": "type",
            "user_id": "data.user_id",
            "email": "data.email",
            "properties": "data",
            "occurred_at": "created_at",
            "delivery_id": "id",
        }
    }
    settings.WEBHOOK_SECRETS = {"billing": "s3cret"}
    body = (
        b'{"id": "whevt_1", "type": "invoice.overdue", "created_at": "2026-11-20T08:00:00Z", '
        b'"data": {"user_id": "user-42", "email": "ada@example.com", "days": 3}}'
    )
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()  # openssl dgst -hmac

    response = post_webhook("billing", body, {"X-Signature": signature})

    assert response.status_code == 200, response.body_json
    event = Event.objects.select_related("contact").get()
    assert (event.name, event.contact.email, event.properties["days"]) == (
        "invoice.overdue",
        "ada@example.com",
        3,
    )
    assert post_webhook("billing", body, {"X-Signature": signature}).body_json["duplicate"] is True


def test_a_provider_needs_no_csrf_token_and_may_send_any_content_type():
    from django.test import Client

    body = payload("segment_track")
    response = Client(enforce_csrf_checks=True).post(
        "/v1/webhooks/segment",
        body,
        content_type="application/x-www-form-urlencoded",  # what `curl -d` sends
        headers=segment_headers(body),
    )

    assert response.status_code == 200, response.content
    assert Event.objects.get().name == "Order Completed"
