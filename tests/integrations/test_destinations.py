"""Outbound destinations: each kind delivers a request its (fake, loopback) receiver accepts the way
the real service would; failures retry with a stable delivery id and end as dead letters that an
operator can replay."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from contacts.models import AuditEntry
from integrations.actions import deliveries_replay, destination_test_send
from integrations.lifecycle import lifecycle_emit, notify_destinations, operator_alert_send
from integrations.models import Delivery, Destination
from integrations.outbound import deliveries_due, delivery_attempt
from integrations.selectors import dead_letters_by_destination, dead_letters_count

pytestmark = pytest.mark.django_db

BOUNCE = {
    "emailId": "3f0c9a52-0d6e-4f0a-9b8e-2a1c6d5e4f30",
    "to": "ada@example.com",
    "contactId": "8d1f7c2a-5b3e-4c6d-9e8f-0a1b2c3d4e5f",
    "userId": "user-42",
    "template": "activation/welcome",
    "subject": "Welcome",
    "category": "product",
    "status": "bounced",
    "reason": "550 5.1.1 mailbox does not exist",
    "runId": None,
    "journeyId": None,
}


def webhook_to(receiver, **fields) -> Destination:
    destination = Destination.objects.create(
        name="ours", kind="webhook", url=receiver.url + "/hooks", **fields
    )
    receiver.secret = destination.secret
    return destination


def emit_bounce() -> Delivery:
    [delivery_id] = lifecycle_emit(type="email.bounced", data=BOUNCE)
    return Delivery.objects.get(pk=delivery_id)


def test_a_webhook_destination_gets_a_standard_webhooks_request_its_receiver_verifies(fake_receiver):
    receiver = fake_receiver("webhook")
    webhook_to(receiver)
    delivery = emit_bounce()

    delivery = delivery_attempt(delivery_id=delivery.pk)

    assert delivery.status == Delivery.Status.DELIVERED
    [request] = receiver.received
    assert request.path == "/hooks"
    assert request.headers["webhook-id"] == str(delivery.pk)
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.json["type"] == "email.bounced"
    assert request.json["version"] == 1
    assert request.json["data"] == BOUNCE
    assert request.json["id"] == str(delivery.event_id)


def test_the_webhook_secret_is_generated_in_the_standard_whsec_form():
    destination = Destination.objects.create(name="x", kind="webhook", url="https://example.com/h")
    assert destination.secret.startswith("whsec_") and len(destination.secret) > 30


def test_a_receiver_with_another_secret_refuses_the_request_and_the_delivery_is_retried(fake_receiver):
    receiver = fake_receiver("webhook")
    webhook_to(receiver)
    receiver.secret = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"
    delivery = delivery_attempt(delivery_id=emit_bounce().pk)

    assert receiver.refused and "signature" in receiver.refused[0][1]
    assert delivery.status == Delivery.Status.PENDING
    assert (delivery.attempts, delivery.last_status_code) == (1, 401)


def test_a_failing_receiver_is_retried_with_the_same_delivery_id_until_it_takes_it(
    fake_receiver, instant_retries
):
    receiver = fake_receiver("webhook")
    webhook_to(receiver)
    receiver.fail_next = 2
    delivery = emit_bounce()

    for _ in range(3):
        delivery = delivery_attempt(delivery_id=delivery.pk)

    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.attempts == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery.pk)}
    assert len(receiver.received) == 1


def test_retries_back_off_from_seconds_to_hours_and_nothing_is_sent_before_its_time(fake_receiver):
    receiver = fake_receiver("webhook")
    webhook_to(receiver)
    receiver.fail_next = 100
    delivery = emit_bounce()
    waits = []
    with time_machine.travel(timezone.now(), tick=True) as clock:
        for _ in range(7):
            before = timezone.now()
            delivery = delivery_attempt(delivery_id=delivery.pk)
            waits.append((delivery.next_attempt_at - before).total_seconds())
            assert delivery_attempt(delivery_id=delivery.pk).attempts == delivery.attempts  # not due yet
            clock.move_to(delivery.next_attempt_at + timedelta(seconds=1))
        delivery = delivery_attempt(delivery_id=delivery.pk)

    assert waits[0] < 60 and waits[-1] >= 3 * 3600
    assert waits == sorted(waits)
    assert receiver.attempts == 8
    assert delivery.status == Delivery.Status.DEAD


def test_after_the_last_attempt_a_delivery_is_a_dead_letter_the_operator_can_replay(
    fake_receiver, instant_retries, admin_user
):
    receiver = fake_receiver("webhook")
    destination = webhook_to(receiver)
    receiver.fail_next = 100
    delivery = emit_bounce()
    since = timezone.now() - timedelta(minutes=1)

    for _ in range(10):
        delivery = delivery_attempt(delivery_id=delivery.pk)

    assert delivery.status == Delivery.Status.DEAD
    assert receiver.attempts == 8  # nothing more once dead
    assert "503" in delivery.last_error
    assert dead_letters_count(since=since) == 1
    assert dead_letters_by_destination(since=since) == {destination.name: 1}

    receiver.fail_next = 0
    assert deliveries_replay(delivery_ids=[delivery.pk], actor=admin_user) == 1
    delivery = delivery_attempt(delivery_id=delivery.pk)

    assert delivery.status == Delivery.Status.DELIVERED
    assert dead_letters_count(since=since) == 0
    assert AuditEntry.objects.filter(action="delivery.replay", actor=admin_user).exists()


def test_posthog_gets_a_capture_call_with_the_project_key_and_the_delivery_id_as_uuid(fake_receiver):
    receiver = fake_receiver("posthog", secret="phc_projectkey123")
    Destination.objects.create(name="ph", kind="posthog", url=receiver.url, secret="phc_projectkey123")
    delivery = delivery_attempt(delivery_id=emit_bounce().pk)

    assert delivery.status == Delivery.Status.DELIVERED
    body = receiver.received[0].json
    assert (body["event"], body["distinct_id"], body["uuid"]) == (
        "email.bounced",
        "user-42",
        str(delivery.pk),
    )
    assert body["properties"]["template"] == "activation/welcome"


def test_segment_gets_a_track_call_with_the_write_key_and_the_delivery_id_as_message_id(fake_receiver):
    receiver = fake_receiver("segment", secret="wk_segment_abc")
    Destination.objects.create(name="seg", kind="segment", url=receiver.url, secret="wk_segment_abc")
    delivery = delivery_attempt(delivery_id=emit_bounce().pk)

    assert delivery.status == Delivery.Status.DELIVERED
    body = receiver.received[0].json
    assert (body["event"], body["userId"], body["messageId"]) == (
        "email.bounced",
        "user-42",
        str(delivery.pk),
    )


def test_a_segment_destination_with_the_wrong_write_key_is_refused_by_the_receiver(fake_receiver):
    receiver = fake_receiver("segment", secret="wk_segment_abc")
    Destination.objects.create(name="seg", kind="segment", url=receiver.url, secret="stale-key")
    delivery = delivery_attempt(delivery_id=emit_bounce().pk)

    assert delivery.status == Delivery.Status.PENDING and delivery.last_status_code == 401


def test_slack_gets_one_human_readable_line(fake_receiver):
    receiver = fake_receiver("slack")
    Destination.objects.create(name="alerts", kind="slack", url=receiver.url + "/services/T0/B0/xyz")
    delivery_attempt(delivery_id=emit_bounce().pk)

    assert receiver.received[0].json == {
        "text": "Email *activation/welcome* to ada@example.com: bounced (550 5.1.1 mailbox does not exist)"
    }


def test_operator_alerts_and_notices_reach_slack_as_text(fake_receiver):
    receiver = fake_receiver("slack")
    Destination.objects.create(name="ops", kind="slack", url=receiver.url + "/s", event_types=["operator.*"])
    ids = operator_alert_send(
        title="Bounce rate 6%", text="above 4% for the last hour", payload={"rule": "bounce_rate"}
    )
    ids += notify_destinations(text="Deploy finished")
    for delivery_id in ids:
        delivery_attempt(delivery_id=delivery_id)

    texts = [r.json["text"] for r in receiver.received]
    assert texts == [
        ":rotating_light: *Bounce rate 6%*\nabove 4% for the last hour",
        ":rotating_light: *Hogsend*\nDeploy finished",
    ]


def test_each_destination_gets_only_the_event_types_it_asked_for():
    emails = Destination.objects.create(
        name="e", kind="slack", url="http://127.0.0.1:9/", event_types=["email.*"]
    )
    journeys = Destination.objects.create(
        name="j", kind="slack", url="http://127.0.0.1:9/", event_types=["journey.completed"]
    )
    everything = Destination.objects.create(name="all", kind="slack", url="http://127.0.0.1:9/")

    lifecycle_emit(type="email.bounced", data=BOUNCE)
    lifecycle_emit(type="journey.completed", data={"runId": "r"})
    lifecycle_emit(type="journey.exited", data={"runId": "r"})

    def types(destination):
        return sorted(destination.deliveries.values_list("event_type", flat=True))

    assert types(emails) == ["email.bounced"]
    assert types(journeys) == ["journey.completed"]
    assert types(everything) == ["email.bounced", "journey.completed", "journey.exited"]


def test_a_paused_destination_keeps_its_deliveries_and_sends_them_when_resumed(fake_receiver):
    receiver = fake_receiver("webhook")
    destination = webhook_to(receiver, paused=True)
    delivery = emit_bounce()

    delivery = delivery_attempt(delivery_id=delivery.pk)
    assert (delivery.status, receiver.attempts) == (Delivery.Status.PENDING, 0)
    assert deliveries_due() == []

    destination.paused = False
    destination.save()
    assert deliveries_due() == [delivery.pk]
    assert delivery_attempt(delivery_id=delivery.pk).status == Delivery.Status.DELIVERED


def test_emission_only_writes_rows_so_a_destination_that_is_down_costs_nothing_inline():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    Destination.objects.create(name="down", kind="webhook", url=f"http://127.0.0.1:{dead_port}/")

    delivery = emit_bounce()

    assert (delivery.status, delivery.attempts, delivery.last_error) == (Delivery.Status.PENDING, 0, "")
    delivery = delivery_attempt(delivery_id=delivery.pk)
    assert delivery.status == Delivery.Status.PENDING and "ConnectError" in delivery.last_error


def test_nothing_is_written_when_no_destination_listens_or_the_change_rolls_back():
    assert lifecycle_emit(type="email.bounced", data=BOUNCE) == []
    Destination.objects.create(name="d", kind="slack", url="http://127.0.0.1:9/")
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle_emit(type="email.bounced", data=BOUNCE)
        raise RuntimeError("the transition failed")
    assert not Delivery.objects.exists()


def test_an_unknown_lifecycle_type_is_refused():
    with pytest.raises(ValueError, match="not a lifecycle event"):
        lifecycle_emit(type="email.teleported", data={})


def test_test_send_reaches_the_receiver_now_even_when_paused_and_leaves_no_delivery(
    fake_receiver, admin_user
):
    receiver = fake_receiver("webhook")
    destination = webhook_to(receiver, paused=True, event_types=["email.*"])

    outcome = destination_test_send(destination=destination, actor=admin_user)

    assert outcome.ok
    assert receiver.received[0].json["type"] == "destination.test"
    assert not Delivery.objects.exists()
    assert AuditEntry.objects.filter(action="destination.test_send", target_id=str(destination.pk)).exists()


def test_after_commit_the_celery_job_delivers_it(
    fake_receiver, django_capture_on_commit_callbacks, monkeypatch
):
    from hogsend.celery import app

    # The app reads Django settings under the CELERY_ namespace, so the override goes by that name.
    monkeypatch.setitem(app.conf, "CELERY_TASK_ALWAYS_EAGER", True)
    receiver = fake_receiver("webhook")
    webhook_to(receiver)

    with django_capture_on_commit_callbacks(execute=True):
        delivery = emit_bounce()
        assert receiver.attempts == 0  # nothing leaves before the commit

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert len(receiver.received) == 1


def test_destinations_listed_in_settings_are_written_and_removed_when_unlisted(settings):
    from django.core.management import call_command

    Destination.objects.create(name="made-in-studio", kind="slack", url="http://127.0.0.1:9/")
    settings.INTEGRATIONS_DESTINATIONS = [
        {
            "name": "ops-slack",
            "kind": "slack",
            "url": "https://hooks.slack.com/services/T/B/C",
            "event_types": ["operator.*"],
        },
        {
            "name": "warehouse",
            "kind": "webhook",
            "url": "https://example.com/hooks",
            "secret": "whsec_MDEyMzQ1Njc4OWFi",
        },
    ]
    call_command("destinations_sync")
    ops = Destination.objects.get(name="ops-slack")
    assert (ops.kind, ops.event_types, ops.from_settings) == ("slack", ["operator.*"], True)
    assert Destination.objects.get(name="warehouse").secret == "whsec_MDEyMzQ1Njc4OWFi"

    settings.INTEGRATIONS_DESTINATIONS = settings.INTEGRATIONS_DESTINATIONS[:1]
    call_command("destinations_sync")
    assert sorted(Destination.objects.values_list("name", flat=True)) == ["made-in-studio", "ops-slack"]


def test_the_catalog_command_prints_a_schema_for_every_documented_type(capsys):
    import json

    from django.core.management import call_command

    call_command("lifecycle_catalog")
    document = json.loads(capsys.readouterr().out)
    wanted = {
        *(
            f"contact.{t}"
            for t in ("created", "updated", "unsubscribed", "resubscribed", "confirmed", "suppressed")
        ),
        *(f"journey.{t}" for t in ("entered", "completed", "exited", "failed")),
        *(
            f"email.{t}"
            for t in (
                "queued",
                "sent",
                "delivered",
                "opened",
                "clicked",
                "bounced",
                "complained",
                "failed",
                "suppressed",
            )
        ),
    }
    assert wanted <= set(document["events"])
    assert all(schema["$id"].endswith("/v1") for schema in document["events"].values())


def test_delivered_rows_and_old_webhook_records_are_pruned_but_dead_letters_stay(settings):
    from integrations.models import WebhookDelivery
    from integrations.outbound import integrations_prune

    destination = Destination.objects.create(name="d", kind="slack", url="http://127.0.0.1:9/")
    old, recent, dead = (emit_bounce() for _ in range(3))
    long_ago = timezone.now() - timedelta(days=settings.INTEGRATIONS_DELIVERED_KEEP_DAYS + 1)
    Delivery.objects.filter(pk=old.pk).update(status=Delivery.Status.DELIVERED, delivered_at=long_ago)
    Delivery.objects.filter(pk=recent.pk).update(
        status=Delivery.Status.DELIVERED, delivered_at=timezone.now()
    )
    Delivery.objects.filter(pk=dead.pk).update(status=Delivery.Status.DEAD, dead_at=long_ago)
    stale = WebhookDelivery.objects.create(source_id="stripe", delivery_id="evt_old", outcome="accepted")
    WebhookDelivery.objects.filter(pk=stale.pk).update(received_at=timezone.now() - timedelta(days=400))
    WebhookDelivery.objects.create(source_id="stripe", delivery_id="evt_new", outcome="accepted")

    assert integrations_prune() == (1, 1)
    assert set(destination.deliveries.values_list("pk", flat=True)) == {recent.pk, dead.pk}
    assert list(WebhookDelivery.objects.values_list("delivery_id", flat=True)) == ["evt_new"]


def test_the_sweep_sends_what_was_never_enqueued(fake_receiver, monkeypatch):
    """A commit whose enqueue was lost (the broker was down): the periodic sweep finds it."""
    from hogsend.celery import app
    from integrations.tasks import deliveries_sweep_task

    monkeypatch.setitem(app.conf, "CELERY_TASK_ALWAYS_EAGER", True)
    receiver = fake_receiver("webhook")
    webhook_to(receiver)
    delivery = emit_bounce()  # this test's transaction never commits: no job was queued
    assert receiver.attempts == 0

    assert deliveries_sweep_task() == 1

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert deliveries_sweep_task() == 0
