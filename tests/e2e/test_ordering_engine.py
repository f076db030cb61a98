"""Event order on the real engine: an exit event that arrives with the trigger ends the run
before its first send."""

from __future__ import annotations

import time

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
