"""Event order on the real engine: an exit event that arrives with the trigger ends the run
before its first send."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from journeys.models import JourneyRun
from tests.e2e.conftest import DAY, wait_until

pytestmark = pytest.mark.engine


def test_a_batch_with_the_abandon_then_the_purchase_sends_no_winback_email(api, live, smtp):
    response = api.post(
        "/v1/events/batch",
        {
            "events": [
                {"name": "checkout.abandoned", "userId": "shopper", "userEmail": "shopper@example.com"},
                {"name": "checkout.completed", "userId": "shopper"},
            ]
        },
    )
    assert response.status_code in (200, 202, 207), response.content

    run = wait_until(
        lambda: JourneyRun.objects.filter(
            journey_id="conversion-abandoned-checkout", contact__user_id="shopper"
        ).first(),
        timeout=30,
        what="the abandoned-checkout run",
    )
    time.sleep(2 * DAY)  # past the day-one follow-up the journey would have slept to
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("exited", "exit_on:checkout.completed")
    assert smtp.to("shopper@example.com") == []


def test_a_week_old_payment_arriving_mid_journey_leaves_the_churn_run_going(api, live, smtp):
    """Ingest's exit rules go by event time on the real engine too: the late event from before the
    trigger exits nothing, and every email of the journey still goes."""
    user = {"userId": "stale", "userEmail": "stale@example.com"}
    assert api.post("/v1/events", {"name": "payment.failed", **user}).status_code == 202

    def parked():
        run = JourneyRun.objects.filter(journey_id="churn-prevention", contact__user_id="stale").first()
        return run if run is not None and run.status == "waiting" else None

    run = wait_until(parked, timeout=30, what="the churn run to park")
    week_ago = (run.trigger_event.occurred_at - timedelta(days=7)).isoformat()
    late = api.post("/v1/events", {"name": "payment.succeeded", "timestamp": week_ago, **user})
    assert late.status_code == 202, late.content
    assert late.json()["exitedRuns"] == []

    wait_until(
        lambda: JourneyRun.objects.filter(pk=run.pk, status="completed").exists(),
        timeout=30,
        what="the churn run to complete",
    )
    assert len(smtp.to("stale@example.com")) == 3
