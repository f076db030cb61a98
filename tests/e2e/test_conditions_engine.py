"""The condition table on the real engine: a live wait's `where` lets through exactly the events
the Python matcher accepts (tests/journeys/test_conditions.py runs the same table in Python)."""

from __future__ import annotations

import pytest

from contacts.models import Event
from journeys.models import JourneyRun
from tests.e2e.conftest import DAY, wait_until
from tests.e2e.invariant_journeys import PROBE
from tests.journeys.condition_cases import CASES

pytestmark = pytest.mark.engine


def post(api, name, user_id, properties):
    body = {
        "name": name,
        "userId": user_id,
        "userEmail": f"{user_id}@example.com",
        "eventProperties": properties,
    }
    response = api.post("/v1/events", body)
    assert response.status_code in (200, 202), response.content


def runs():
    return {
        run.contact.user_id: run
        for run in JourneyRun.objects.filter(journey_id="e2e-condition-probe").select_related("contact")
    }


def test_a_wait_with_where_resolves_on_the_engine_exactly_when_the_python_matcher_says(api, live):
    users = [f"cond-{i}" for i in range(len(CASES))]
    for i, user in enumerate(users):
        post(api, "e2e.condition.start", user, {"case": i})
    wait_until(
        lambda: len([r for r in runs().values() if r.current_node == "probe"]) == len(users),
        timeout=120,
        what="every probe journey parked on its wait",
    )
    for user, (_, properties, _) in zip(users, CASES, strict=True):
        post(api, PROBE, user, properties)
    # Every probe reached the engine while its wait was still open (a late push would time out
    # and look like a non-match).
    wait_until(
        lambda: Event.objects.filter(name=PROBE, dispatch_state=Event.DispatchState.DISPATCHED).count()
        == len(users),
        timeout=10 * DAY,  # well inside the waits' 15 days
        what="every probe pushed",
    )
    assert not [u for u, r in runs().items() if r.current_node == "timed-out"], (
        "a wait timed out before its probe"
    )

    wait_until(
        lambda: all(r.status == "completed" for r in runs().values()),
        timeout=30 * DAY,
        what="every probe decided",
    )
    decided = runs()
    outcome = [
        (str(c), p, decided[u].current_node == "matched") for u, (c, p, _) in zip(users, CASES, strict=True)
    ]
    expected = [(str(c), p, e) for c, p, e in CASES]
    assert outcome == expected
