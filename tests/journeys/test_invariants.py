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
