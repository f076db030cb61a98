"""Alert rules: each fires once per incident, tells the operators, and resolves when it recovers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from contacts.models import Event
from emails.models import EmailLog
from journeys.runtime.worker import Heartbeat
from operations.models import Alert
from operations.services import alerts_evaluate
from tests.operations.conftest import contact, email_log, event, journey_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def operators(settings):
    settings.ALERT_EMAILS = ["ops@example.com"]
    settings.ALERT_WINDOW_MINUTES = 60
    settings.ALERT_MIN_SENDS = 100


@pytest.fixture
def worker_alive():
    """A live journey worker, so `no_live_worker` stays quiet in tests about other rules."""
    Heartbeat("hogsend-test-1", ["activation-welcome"]).beat()


def evaluate(capture) -> dict[str, int]:
    with capture(execute=True):
        return alerts_evaluate()


def firing(rule: str) -> list[Alert]:
    return list(Alert.objects.filter(rule=rule, status=Alert.Status.FIRING))


def test_outbox_lag_fires_once_mails_the_operators_and_resolves(
    settings, worker_alive, django_capture_on_commit_callbacks
):
    settings.ALERT_OUTBOX_LAG_SECONDS = 300
    stuck = event(contact(), age=timedelta(minutes=10))

    assert evaluate(django_capture_on_commit_callbacks) == {"fired": 1, "resolved": 0}
    assert evaluate(django_capture_on_commit_callbacks) == {"fired": 0, "resolved": 0}
    [alert] = firing("outbox_lag")
    assert "1 events pending" in alert.summary
    assert [m.subject for m in mail.outbox] == ["[Hogsend] FIRING: outbox_lag"]
    assert mail.outbox[0].to == ["ops@example.com"]

    Event.objects.filter(pk=stuck.pk).update(dispatch_state=Event.DispatchState.DISPATCHED)
    assert evaluate(django_capture_on_commit_callbacks) == {"fired": 0, "resolved": 1}

    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_at is not None
    assert mail.outbox[-1].subject == "[Hogsend] resolved: outbox_lag"
    assert alert.notified == ["email:firing", "email:resolved"]


def test_a_second_incident_after_resolution_is_a_new_alert(
    settings, worker_alive, django_capture_on_commit_callbacks
):
    settings.ALERT_FAILED_SENDS = 3
    for _ in range(3):
        email_log(status="failed")
    evaluate(django_capture_on_commit_callbacks)
    # The spike passes out of the window: resolved. Then a new one starts.
    EmailLog.objects.update(created_at=timezone.now() - timedelta(hours=2))
    evaluate(django_capture_on_commit_callbacks)
    for _ in range(3):
        email_log(status="failed")
    evaluate(django_capture_on_commit_callbacks)

    assert list(
        Alert.objects.filter(rule="failed_sends").order_by("fired_at").values_list("status", flat=True)
    ) == [
        "resolved",
        "firing",
    ]


def test_a_bounce_rate_above_the_threshold_fires_only_with_enough_sends(
    settings, worker_alive, django_capture_on_commit_callbacks
):
    settings.ALERT_BOUNCE_RATE = 0.04
    settings.ALERT_MIN_SENDS = 100
    for _ in range(5):
        email_log(status="bounced", bounced_at=timezone.now())
    evaluate(django_capture_on_commit_callbacks)
    assert firing("bounce_rate") == []  # 5 of 5 bounced, but 5 sends say little

    for _ in range(95):
        email_log(status="delivered")
    evaluate(django_capture_on_commit_callbacks)

    [alert] = firing("bounce_rate")
    assert alert.value == pytest.approx(0.05)


def test_a_complaint_rate_above_three_in_a_thousand_fires(
    settings, worker_alive, django_capture_on_commit_callbacks
):
    settings.ALERT_MIN_SENDS = 100
    for _ in range(996):
        email_log(status="delivered")
    for _ in range(4):
        email_log(status="complained", complained_at=timezone.now())

    evaluate(django_capture_on_commit_callbacks)

    [alert] = firing("complaint_rate")
    assert alert.value == pytest.approx(0.004)
    assert "0.3%" in alert.summary


def test_no_live_worker_fires_and_resolves_when_one_beats(django_capture_on_commit_callbacks):
    evaluate(django_capture_on_commit_callbacks)
    assert len(firing("no_live_worker")) == 1

    Heartbeat("hogsend-test-1", ["activation-welcome"]).beat()
    evaluate(django_capture_on_commit_callbacks)

    assert firing("no_live_worker") == []


def test_a_journey_failing_repeatedly_fires_for_that_journey_only(
    settings, worker_alive, django_capture_on_commit_callbacks
):
    settings.ALERT_JOURNEY_FAILURES = 3
    for _ in range(3):
        journey_run(contact(), journey_id="trial-expiry", status="failed")
    journey_run(contact(), journey_id="activation-welcome", status="failed")

    evaluate(django_capture_on_commit_callbacks)

    assert [a.subject for a in firing("journey_failing")] == ["trial-expiry"]


def test_a_destination_dead_lettering_fires_for_that_destination_and_resolves(
    settings, worker_alive, django_capture_on_commit_callbacks
):
    import uuid

    from integrations.models import Delivery, Destination

    settings.ALERT_DEAD_LETTERS = 2
    crm = Destination.objects.create(name="crm", kind="webhook", url="https://crm.example.com/hook")
    now = timezone.now()
    for _ in range(2):
        Delivery.objects.create(
            destination=crm, event_id=uuid.uuid4(), event_type="email.sent", payload={},
            next_attempt_at=now, status=Delivery.Status.DEAD, dead_at=now,
        )  # fmt: skip

    evaluate(django_capture_on_commit_callbacks)

    [alert] = firing("destination_dead_letters")
    assert alert.subject == "crm" and alert.value == 2

    Delivery.objects.update(dead_at=now - timedelta(hours=2))  # out of the window: recovered
    evaluate(django_capture_on_commit_callbacks)
    assert firing("destination_dead_letters") == []


def test_an_alert_goes_to_every_destination_that_takes_operator_alerts(
    settings, worker_alive, django_capture_on_commit_callbacks
):
    from integrations.models import Delivery, Destination

    slack = Destination.objects.create(
        name="ops-slack",
        kind="slack",
        url="https://hooks.slack.com/services/T0/B0/x",
        event_types=["operator.alert"],
    )
    Destination.objects.create(
        name="crm", kind="webhook", url="https://crm.example.com/hook", event_types=["email.*"]
    )
    settings.ALERT_OUTBOX_LAG_SECONDS = 300
    event(contact(), age=timedelta(minutes=10))

    evaluate(django_capture_on_commit_callbacks)

    [delivery] = Delivery.objects.filter(event_type="operator.alert")
    assert delivery.destination == slack
    assert delivery.payload["data"]["alert"]["rule"] == "outbox_lag"
    assert delivery.payload["data"]["title"] == "[Hogsend] FIRING: outbox_lag"
    assert firing("outbox_lag")[0].notified == ["email:firing", "destinations:firing"]
