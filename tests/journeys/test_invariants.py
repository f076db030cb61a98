"""Property-based tests: every shipped journey keeps its promises for generated event sequences
(gaps, duplicates, out-of-order timestamps, unsubscribes, crashes and resumes), and the two
condition evaluators agree. A fixed seed and a bounded budget keep CI deterministic."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from journeys.invariants import check_invariants, condition_cases, evaluators_agree, journey_scenarios, play
from journeys.shipped import JOURNEYS
from journeys.shipped.constants import Events
from journeys.testing import JourneyHarness

# What each journey waits for or looks up, beyond its trigger and exits.
AWAITED = {
    "activation-welcome": [Events.FEATURE_USED],
    "churn-prevention": [],
    "conversion-abandoned-checkout": [],
    "concierge-onboarding": [Events.CSM_CONTACTED],
    "approval-gate": [Events.APPROVAL_GRANTED],
    "support-follow-up": [Events.EMAIL_ANSWERED],
    "comment-digest": [],
}
BUDGET = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.fixture(autouse=True)
def csm_inbox(settings):
    settings.CSM_ALERT_EMAIL = "csm@hogsend.example"


@pytest.mark.parametrize("journey", JOURNEYS, ids=lambda j: j.id)
def test_every_shipped_journey_keeps_its_promises_for_any_sequence_of_events(db, journey):
    @BUDGET
    @given(scenario=journey_scenarios(journey, awaited=AWAITED[journey.id]))
    def keeps_its_promises(scenario):
        with JourneyHarness() as harness:
            trace = play(harness, journey, scenario)
            assert check_invariants(trace) == [], scenario

    keeps_its_promises()


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(case=condition_cases())
def test_python_and_the_engines_cel_agree_on_any_condition_and_properties(case):
    condition, properties = case
    assert evaluators_agree(condition, properties), (condition, properties, condition.to_cel())


@pytest.mark.parametrize("journey", JOURNEYS, ids=lambda j: j.id)
def test_every_shipped_journey_keeps_the_send_time_policy_for_recipients_in_any_zone(db, settings, journey):
    """Quiet hours and caps on the journeys' own category, recipients an ocean apart: no send
    inside a recipient's night, no cap exceeded, and every run still ends (held sends go out)."""
    settings.HOGSEND_QUIET_HOURS = {journey.category: ("21:00", "08:00")}
    settings.HOGSEND_FREQUENCY_CAPS = {journey.category: [(1, "6h"), (2, "3d")]}
    zones = {"ada": "America/New_York", "bob": "Asia/Tokyo"}

    @BUDGET
    @given(scenario=journey_scenarios(journey, awaited=AWAITED[journey.id]))
    def keeps_the_policy(scenario):
        with JourneyHarness() as harness:
            trace = play(harness, journey, scenario, timezones=zones)
            assert check_invariants(trace) == [], scenario

    keeps_the_policy()


def test_the_policy_checks_catch_a_cap_exceeded_and_a_send_at_night(db, settings):
    from datetime import UTC, datetime, timedelta

    from contacts.models import Contact
    from emails.models import EmailLog
    from journeys.invariants import cap_breaches, quiet_hours_breaches

    settings.HOGSEND_QUIET_HOURS = {"journey": ("21:00", "08:00")}
    settings.HOGSEND_FREQUENCY_CAPS = {"journey": [(1, "24h")]}
    contact = Contact.objects.create(
        user_id="ada", email="ada@example.com", properties={"timezone": "Europe/Berlin"}
    )
    night = datetime(2026, 1, 5, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    emails = [
        EmailLog(
            contact=contact,
            to_email=contact.email,
            template="t",
            category="journey",
            status="sent",
            sent_at=at,
        )
        for at in (night, night + timedelta(hours=11))  # 10:30 the next morning
    ]

    assert len(cap_breaches(emails)) == 1
    assert quiet_hours_breaches(emails) == [
        "'t' reached ada@example.com at 23:30 Europe/Berlin, inside the quiet hours 21:00-08:00 of 'journey' mail"
    ]
