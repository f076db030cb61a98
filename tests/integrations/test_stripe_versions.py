"""The Stripe preset reads both object shapes: before API version 2025-03-31 and after it, when
invoices moved their subscription under `parent`, subscriptions moved their billing period onto
their items, and PaymentIntents stopped naming their invoice. Every event type the preset maps is
delivered in both shapes, signed as Stripe signs."""

from __future__ import annotations

import json

import pytest

from contacts.models import Contact, Event
from integrations.models import WebhookDelivery
from integrations.sources.stripe import EVENT_NAMES
from tests.integrations.conftest import payload, stripe_headers

pytestmark = pytest.mark.django_db

SHAPES = ("acacia", "basil")  # 2024-09-30.acacia and 2025-03-31.basil
SUBSCRIPTION = "sub_1Q9yLkLkdIwHu7ixPjN2sZ3b"
FIXTURE_OF_KIND = {
    "invoice.": "stripe_invoice",
    "payment_intent.": "stripe_payment_intent_one_off",
    "customer.subscription.": "stripe_subscription",
    "checkout.session.": "stripe_checkout_session",
}


def delivery(fixture: str, *, stripe_type: str | None = None, event_id: str | None = None) -> bytes:
    event = json.loads(payload(fixture))
    if stripe_type is not None:
        event["type"] = stripe_type
    if event_id is not None:
        event["id"] = event_id
    return json.dumps(event).encode()


def post(post_webhook, body: bytes):
    response = post_webhook("stripe", body, stripe_headers(body))
    assert response.status_code == 200, response.body_json
    return response


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("stripe_type", sorted(EVENT_NAMES))
def test_every_mapped_event_type_reaches_the_user_in_both_shapes(post_webhook, stripe_type, shape):
    fixture = next(f for prefix, f in FIXTURE_OF_KIND.items() if stripe_type.startswith(prefix))
    post(post_webhook, delivery(f"{fixture}_{shape}", stripe_type=stripe_type))

    event = Event.objects.select_related("contact").get()
    assert (event.name, event.contact.user_id) == (EVENT_NAMES[stripe_type], "user-42")
    if fixture != "stripe_subscription":  # a subscription carries no address
        assert event.contact.email == "ada@example.com"
    assert event.properties["stripe_event_type"] == stripe_type
    assert event.occurred_at.timestamp() == 1732104000
    if fixture == "stripe_invoice":
        assert (event.properties["subscription_id"], event.properties["amount_due"]) == (SUBSCRIPTION, 4900)
    elif fixture == "stripe_subscription":
        assert event.properties["plan"] == "pro_monthly"
        assert event.properties["current_period_end"] == 1732190400
    elif fixture == "stripe_checkout_session":
        assert event.properties["subscription_id"] == SUBSCRIPTION
    else:
        assert event.properties["failure_code"] == "card_declined"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("stripe_type", ["payment_intent.payment_failed", "payment_intent.succeeded"])
def test_an_invoices_own_payment_intent_is_ignored_in_both_shapes(post_webhook, stripe_type, shape):
    post(post_webhook, delivery(f"stripe_payment_intent_invoice_{shape}", stripe_type=stripe_type))

    assert not Event.objects.exists()
    assert not Contact.objects.exists()
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.IGNORED


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("order", ["invoice first", "payment intent first"])
def test_one_failed_renewal_is_one_payment_failed_for_the_subscriptions_user(post_webhook, shape, order):
    deliveries = [delivery(f"stripe_invoice_{shape}"), delivery(f"stripe_payment_intent_invoice_{shape}")]
    for body in deliveries if order == "invoice first" else reversed(deliveries):
        post(post_webhook, body)

    event = Event.objects.select_related("contact").get()
    assert (event.name, event.contact.user_id) == ("payment.failed", "user-42")
    assert list(Contact.objects.values_list("user_id", flat=True)) == ["user-42"]


def test_a_guest_checkout_without_a_customer_or_reference_makes_no_contact_of_the_session(post_webhook):
    event = json.loads(payload("stripe_checkout_session_basil"))
    event["data"]["object"].update(customer=None, client_reference_id=None)
    post(post_webhook, json.dumps(event).encode())

    assert not Contact.objects.exists()
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.IGNORED
