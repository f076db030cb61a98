"""The product's promises, on a real Hatchet engine, driven through the HTTP API."""

from __future__ import annotations

import subprocess
import time

import pytest

from contacts.models import Event
from emails.models import EmailLog
from journeys.models import JourneyRun
from tests.e2e.conftest import CSM_INBOX, DAY, wait_until

# Compressed time makes a journey day two seconds, so a wait's whole window is a couple of seconds
# of wall clock on a shared two-core machine; a run the machine stalls through is retried once.
pytestmark = [pytest.mark.engine, pytest.mark.flaky(reruns=1, reruns_delay=2)]


def post(api, name, user_id, **fields):
    body = {"name": name, "userId": user_id, "userEmail": f"{user_id}@example.com", **fields}
    response = api.post("/v1/events", body)
    assert response.status_code in (200, 202), response.content
    return response.json()


def run_of(journey_id, user_id):
    return (
        JourneyRun.objects.filter(journey_id=journey_id, contact__user_id=user_id)
        .order_by("-entered_at")
        .first()
    )


def wait_for_run(journey_id, user_id, status, timeout=20 * DAY):
    def check():
        run = run_of(journey_id, user_id)
        return run if run is not None and run.status == status else None

    return wait_until(check, timeout=timeout, what=f"{journey_id} for {user_id} to be {status}")


def subject(message):
    return " ".join(str(message["Subject"]).split())  # unfold long encoded headers


def subjects(smtp, user_id):
    return [subject(m) for m in smtp.to(f"{user_id}@example.com")]


def test_welcome_series_branches_on_whether_the_feature_was_used(api, live, smtp):
    post(api, "user.created", "eager")
    post(api, "user.created", "idle")
    wait_until(lambda: len(smtp.to("eager@example.com")) == 1, timeout=10, what="welcome email")
    post(api, "feature.used", "eager")

    wait_for_run("activation-welcome", "eager", "completed")
    wait_for_run("activation-welcome", "idle", "completed")
    assert subjects(smtp, "eager") == [
        "Welcome to Hogsend — let's get you set up",
        "Nice work — here's what to try next",
    ]
    assert subjects(smtp, "idle") == [
        "Welcome to Hogsend — let's get you set up",
        "You haven't tried the key feature yet",
    ]


def test_an_exit_mid_sleep_stops_the_journey_and_nothing_more_is_sent(api, live, smtp):
    post(api, "payment.failed", "late")
    wait_until(
        lambda: (r := run_of("churn-prevention", "late")) and r.status == "waiting", timeout=10, what="parked"
    )
    exited = post(api, "payment.succeeded", "late")

    run = run_of("churn-prevention", "late")
    assert exited["exitedRuns"] == [str(run.id)]
    time.sleep(4 * DAY)  # long past every sleep the journey had left
    assert subjects(smtp, "late") == ["Your payment didn't go through"]
    assert run_of("churn-prevention", "late").status == "exited"

    from journeys.runtime.engine import hatchet_client

    status = hatchet_client().runs.get_status(run.engine_run_id)
    assert "CANCEL" in str(status).upper()


def test_wait_for_event_resolves_and_the_csm_name_reaches_the_email(api, live, smtp):
    post(api, "user.signed_up", "acme", eventProperties={"plan": "enterprise", "seats": 40})
    wait_until(
        lambda: (r := run_of("concierge-onboarding", "acme")) and r.current_node == "await-csm",
        timeout=10,
        what="await-csm",
    )
    post(api, "csm.contacted", "acme", eventProperties={"csm_name": "Sarah", "channel": "email"})

    wait_for_run("concierge-onboarding", "acme", "completed")
    [intro] = smtp.to("acme@example.com")
    assert intro["Subject"] == "Next steps for your rollout"
    assert "Sarah will be your guide" in intro.get_body(("plain",)).get_content()
    assert len(smtp.to(CSM_INBOX)) == 1


def test_the_concierge_ladder_pages_re_pages_then_falls_back(api, live, smtp):
    post(api, "user.signed_up", "quiet", eventProperties={"plan": "enterprise", "seats": 12})

    wait_for_run("concierge-onboarding", "quiet", "completed", timeout=10 * DAY)
    pages = [subject(m) for m in smtp.to(CSM_INBOX) if "quiet@example.com" in subject(m)]
    assert pages == [
        "[CSM] new enterprise signup: quiet@example.com",
        "[CSM — reminder] enterprise signup waiting: quiet@example.com",
    ]
    keys = EmailLog.objects.filter(to_email=CSM_INBOX).values_list("idempotency_key", flat=True)
    assert len(set(keys)) == 2
    assert subjects(smtp, "quiet") == ["Getting your team set up"]
    # the alert task really ran for each ctx.trigger
    assert Event.objects.filter(name="csm.assignment_requested", contact__user_id="quiet").count() == 2


def test_the_same_idempotency_key_twice_enrolls_once(api, live, smtp):
    first = post(api, "user.created", "twice", idempotencyKey="signup-twice")
    again = post(api, "user.created", "twice", idempotencyKey="signup-twice")

    assert again["eventId"] == first["eventId"] and again["duplicate"] is True
    wait_for_run("activation-welcome", "twice", "completed")
    assert JourneyRun.objects.filter(contact__user_id="twice").count() == 1
    assert len(subjects(smtp, "twice")) == 2


def test_three_journeys_on_one_trigger_run_concurrently(api, live, smtp):
    post(api, "e2e.fanout", "fan")

    runs = wait_until(
        lambda: (rs := list(JourneyRun.objects.filter(contact__user_id="fan", status="completed")))
        and len(rs) == 3
        and rs,
        timeout=10 * DAY,
        what="three completed runs",
    )
    # Each sleeps a journey day; had they run one after another, the last would enter a day later.
    entered = sorted(r.entered_at for r in runs)
    assert (entered[-1] - entered[0]).total_seconds() < DAY
    assert sorted(subjects(smtp, "fan")) == ["e2e-fanout-a", "e2e-fanout-b", "e2e-fanout-c"]


def test_kill_9_while_parked_and_while_sending_loses_and_duplicates_nothing(api, live, smtp):
    users = [f"crash{i}" for i in range(8)]
    for user in users[:4]:
        post(api, "user.created", user)
    wait_until(
        lambda: JourneyRun.objects.filter(contact__user_id__in=users[:4], status="waiting").count() == 4,
        timeout=15,
        what="four runs parked",
    )
    live.kill()  # parked in their sleeps
    for user in users[4:]:
        post(api, "user.created", user)  # accepted while no worker runs
    live.restart()
    time.sleep(0.3)
    live.kill()  # likely mid-send for the second batch
    live.restart()

    for user in users:
        wait_for_run("activation-welcome", user, "completed", timeout=120)
    for user in users:
        assert subjects(smtp, user) == [
            "Welcome to Hogsend — let's get you set up",
            "You haven't tried the key feature yet",
        ], user


def test_events_posted_while_the_engine_is_down_run_when_it_returns(api, live, smtp, engine):
    subprocess.run([str(engine), "stop"], check=True, timeout=120)
    try:
        accepted = post(api, "user.created", "offline")
        assert Event.objects.get(pk=accepted["eventId"]).dispatch_state == "pending"
    finally:
        subprocess.run([str(engine), "start"], check=True, timeout=300)

    # A worker that held durable runs across an engine restart must be restarted (its parked runs
    # are not redelivered to it); ops do the same after an engine upgrade.
    live.restart()
    wait_until(
        lambda: Event.objects.get(pk=accepted["eventId"]).dispatch_state == "dispatched",
        timeout=60,
        what="the worker's outbox relay to push the event",
    )
    wait_for_run("activation-welcome", "offline", "completed", timeout=120)
    assert len(subjects(smtp, "offline")) == 2
