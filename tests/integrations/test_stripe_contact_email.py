"""A Stripe webhook's contact gets the email Stripe has for the customer, and one Stripe has none
for (the Stripe CLI's own `stripe trigger invoice.payment_failed`) runs the churn journey with each
send recorded as skipped, never as a failed run."""

from __future__ import annotations

import json

import pytest

from contacts.models import Event
from emails.models import EmailLog
from journeys.durations import days
from tests.integrations.conftest import payload, stripe_headers

pytestmark = pytest.mark.django_db


def test_the_stripe_clis_payment_failed_for_a_customer_without_email_is_skipped_not_failed(
    post_webhook, journey_harness
):
    body = payload("stripe_invoice_payment_failed_cli")

    response = post_webhook("stripe", body, stripe_headers(body))
    journey_harness.advance(days(3))

    assert response.status_code == 200, response.body_json
    event = Event.objects.select_related("contact").get(source="webhook")
    assert (event.name, event.contact.user_id, event.contact.email) == (
        "payment.failed",
        "cus_RCl1qNoEmail7x",
        "",
    )
    run = journey_harness.run("churn-prevention", "cus_RCl1qNoEmail7x")
    assert run.status == "completed"
    assert set(EmailLog.objects.filter(run=run).values_list("status", "status_reason")) == {
        ("skipped", "no_email_address")
    }


def test_an_expanded_customer_objects_email_becomes_the_contacts_email(post_webhook):
    event = json.loads(payload("stripe_invoice_payment_failed_cli"))
    event["id"] = "evt_expanded_customer"
    event["data"]["object"]["customer"] = {
        "id": "cus_RCl1qNoEmail7x",
        "object": "customer",
        "email": "billing@acme.example",
    }
    body = json.dumps(event).encode()

    assert post_webhook("stripe", body, stripe_headers(body)).status_code == 200

    contact = Event.objects.select_related("contact").get().contact
    assert (contact.user_id, contact.email) == ("cus_RCl1qNoEmail7x", "billing@acme.example")
