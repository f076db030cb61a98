"""The Studio pages for integrations: sources with their URL and recent payloads, the test-send
button, and dead letters replayed one by one or all at once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import AuditEntry
from integrations.lifecycle import lifecycle_emit
from integrations.models import Delivery, Destination
from integrations.outbound import delivery_attempt
from tests.integrations.conftest import payload, stripe_headers

pytestmark = pytest.mark.django_db


def test_the_sources_page_shows_each_url_and_a_recent_payload(admin_client, post_webhook, settings):
    settings.PUBLIC_BASE_URL = "https://hs.example.com"
    body = payload("stripe_invoice_payment_failed")
    post_webhook("stripe", body, stripe_headers(body))

    page = admin_client.get(reverse("admin:integrations_webhook_sources")).content.decode()

    assert "https://hs.example.com/v1/webhooks/stripe" in page
    assert "https://hs.example.com/v1/webhooks/clerk" in page
    assert "evt_1QBzXsLkdIwHu7ixg4lQ3xPe" in page  # the recorded body
    assert "payment.failed" in page


def test_the_test_button_sends_a_test_event_and_says_it_arrived(admin_client, fake_receiver):
    receiver = fake_receiver("webhook")
    destination = Destination.objects.create(name="ours", kind="webhook", url=receiver.url + "/h")
    receiver.secret = destination.secret
    change = reverse("admin:integrations_destination_change", args=[destination.pk])
    assert 'id="send-test"' in admin_client.get(change).content.decode()

    response = admin_client.post(
        reverse("admin:integrations_destination_test", args=[destination.pk]), follow=True
    )

    assert "the test event was accepted" in response.content.decode()
    assert receiver.received[0].json["type"] == "destination.test"


def test_a_destination_with_an_unknown_event_type_is_refused_with_the_reason(admin_client):
    response = admin_client.post(
        reverse("admin:integrations_destination_add"),
        {
            "name": "x",
            "kind": "slack",
            "url": "https://hooks.slack.com/services/T/B/C",
            "event_types": "email.sent,emial.*",
        },
    )

    assert response.status_code == 200
    assert "unknown event types: emial.*" in response.content.decode()
    assert not Destination.objects.exists()


def dead_letter(destination: Destination) -> Delivery:
    [delivery_id] = lifecycle_emit(type="email.failed", data={"emailId": "e", "to": "a@example.com"})
    Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.DEAD, attempts=8)
    return Delivery.objects.get(pk=delivery_id)


def test_dead_letters_are_listed_and_replayed_all_at_once(admin_client, fake_receiver):
    receiver = fake_receiver("slack")
    destination = Destination.objects.create(name="alerts", kind="slack", url=receiver.url + "/s")
    first, second = dead_letter(destination), dead_letter(destination)

    listing = admin_client.get(reverse("admin:integrations_delivery_changelist") + "?status__exact=dead")
    assert listing.content.decode().count("email.failed") >= 2

    admin_client.post(reverse("admin:integrations_delivery_replay_all"))

    for delivery in (first, second):
        assert delivery_attempt(delivery_id=delivery.pk).status == Delivery.Status.DELIVERED
    assert len(receiver.received) == 2
    assert AuditEntry.objects.filter(action="delivery.replay").count() == 1


def test_one_dead_letter_is_replayed_from_the_list(admin_client):
    destination = Destination.objects.create(name="alerts", kind="slack", url="http://127.0.0.1:9/")
    chosen, other = dead_letter(destination), dead_letter(destination)

    admin_client.post(
        reverse("admin:integrations_delivery_changelist"),
        {"action": "replay", "_selected_action": [str(chosen.pk)]},
    )

    chosen.refresh_from_db(), other.refresh_from_db()
    assert (chosen.status, chosen.attempts) == (Delivery.Status.PENDING, 0)
    assert other.status == Delivery.Status.DEAD
