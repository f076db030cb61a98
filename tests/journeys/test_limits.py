"""Inputs at their limits: the longest ids the API accepts, and the edges of time windows."""

from __future__ import annotations

import pytest

from journeys.definition import define_journey
from journeys.durations import days, hours
from journeys.keys import bounded_key
from journeys.send import send_email

LONGEST_USER_ID = "u" * 255  # the API's limit for userId
LONGEST_EMAIL = f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 57}.com"  # 254, the longest deliverable address
CSM = "csm@hogsend.example"


@pytest.fixture(autouse=True)
def csm_inbox(settings):
    settings.CSM_ALERT_EMAIL = CSM


def run_to_the_end(harness, event, properties=None):
    harness.emit(event, user_id=LONGEST_USER_ID, email=LONGEST_EMAIL, properties=properties)
    harness.advance(days(5))
    assert harness.task_failures == []


def test_the_welcome_series_runs_to_the_end_for_the_longest_ids(journey_harness):
    run_to_the_end(journey_harness, "user.created")
    assert journey_harness.run("activation-welcome", LONGEST_USER_ID).status == "completed"
    assert len(journey_harness.templates_sent_to(LONGEST_EMAIL)) == 2


def test_churn_prevention_runs_to_the_end_for_the_longest_ids(journey_harness):
    run_to_the_end(journey_harness, "payment.failed")
    assert journey_harness.run("churn-prevention", LONGEST_USER_ID).status == "completed"
    assert len(journey_harness.templates_sent_to(LONGEST_EMAIL)) == 3


def test_the_abandoned_checkout_runs_to_the_end_for_the_longest_ids(journey_harness):
    run_to_the_end(journey_harness, "checkout.abandoned")
    assert journey_harness.run("conversion-abandoned-checkout", LONGEST_USER_ID).status == "completed"
    assert len(journey_harness.templates_sent_to(LONGEST_EMAIL)) == 2


def test_the_concierge_pages_the_csm_twice_for_the_longest_ids(journey_harness):
    run_to_the_end(journey_harness, "user.signed_up", {"plan": "enterprise", "seats": 3})
    assert journey_harness.run("concierge-onboarding", LONGEST_USER_ID).status == "completed"
    pages = journey_harness.templates_sent_to(CSM)
    assert pages == ["transactional/csm-alert", "transactional/csm-alert"]
    assert journey_harness.templates_sent_to(LONGEST_EMAIL) == ["onboarding/enterprise-welcome"]


def test_a_long_key_is_hashed_to_fit_and_stays_stable_and_distinct():
    long_key = bounded_key("csm-alert", LONGEST_USER_ID, "2026-01-05T09:00:00+00:00")
    assert len(long_key) <= 255 and long_key.startswith("csm-alert:sha256:")
    assert long_key == bounded_key("csm-alert", LONGEST_USER_ID, "2026-01-05T09:00:00+00:00")
    assert long_key != bounded_key("csm-alert", LONGEST_USER_ID, "2026-01-06T09:00:00+00:00")
    assert bounded_key("csm-alert", "ada", "t") == "csm-alert:ada:t"


@define_journey(id="limits-suppress", name="suppress boundary", trigger="limits.go", suppress=hours(4))
async def twice_at_the_window_edge(user, ctx):
    await send_email(to=user.email, user_id=user.id, template="activation/nudge", subject="first")
    await ctx.sleep(hours(4), label="exactly-the-window")
    await send_email(to=user.email, user_id=user.id, template="activation/nudge", subject="second")


def test_a_send_exactly_the_suppress_window_after_the_last_one_goes_out(journey_harness, register):
    register(twice_at_the_window_edge)
    journey_harness.emit("limits.go", user_id="ada", email="ada@example.com")
    journey_harness.advance(hours(4))

    assert [(e.subject, e.status) for e in journey_harness.emails("ada@example.com")] == [
        ("first", "sent"),
        ("second", "sent"),
    ]
