from __future__ import annotations

import threading

import pytest
from django.db import connection

from contacts.ingest import event_ingest
from contacts.services import contact_unsubscribe
from journeys.definition import define_journey, on
from journeys.durations import days
from journeys.models import EnrollmentSkip, JourneyRun
from journeys.services import journey_enroll, journey_set_enabled

pytestmark = pytest.mark.usefixtures("enrollment_statements")


async def park(user, ctx):
    await ctx.sleep(days(30), label="parked")


def journey(**meta):
    defaults = {"id": "guarded", "name": "Guarded", "trigger": "thing.happened"}
    return define_journey(**{**defaults, **meta})(park)


def test_a_disabled_journey_skips_with_journey_disabled(journey_harness, register):
    register(journey(enabled=False))
    journey_harness.emit("thing.happened", user_id="u1")

    assert journey_harness.run("guarded", "u1") is None
    assert journey_harness.skip_reasons("guarded", "u1") == ["journey_disabled"]


def test_an_operator_can_disable_and_reenable_at_runtime(journey_harness, register):
    register(journey())
    journey_set_enabled(journey_id="guarded", enabled=False)
    journey_harness.emit("thing.happened", user_id="u1")
    assert journey_harness.skip_reasons("guarded", "u1") == ["journey_disabled"]

    journey_set_enabled(journey_id="guarded", enabled=True)
    journey_harness.emit("thing.happened", user_id="u1")
    assert journey_harness.run("guarded", "u1").status == "waiting"


def test_trigger_conditions_not_met(journey_harness, register):
    register(journey(trigger=on("thing.happened", where=lambda b: b.prop("plan").eq("enterprise"))))
    journey_harness.emit("thing.happened", user_id="u1", properties={"plan": "free"})
    journey_harness.emit("thing.happened", user_id="u2", properties={"plan": "enterprise"})

    assert journey_harness.skip_reasons("guarded", "u1") == ["trigger_conditions_not_met"]
    assert journey_harness.run("guarded", "u2") is not None


def test_once_means_once_even_after_the_first_run_ends(journey_harness, register):
    register(journey(entry_limit="once"))
    journey_harness.emit("thing.happened", user_id="u1")
    journey_harness.advance(days(31))
    assert journey_harness.run("guarded", "u1").status == "completed"

    journey_harness.emit("thing.happened", user_id="u1")
    assert journey_harness.skip_reasons("guarded", "u1") == ["already_entered_once"]


def test_once_per_period_waits_for_the_period(journey_harness, register):
    register(journey(entry_limit="once_per_period", entry_period=days(7)))

    journey_harness.emit("thing.happened", user_id="u1")
    journey_harness.advance(days(31))
    journey_harness.emit("thing.happened", user_id="u1")
    assert JourneyRun.objects.filter(journey_id="guarded").count() == 2

    journey_harness.advance(days(31))
    journey_harness.emit("thing.happened", user_id="u1")
    assert JourneyRun.objects.filter(journey_id="guarded").count() == 3


def test_once_per_period_skips_inside_the_period(journey_harness, register):
    register(journey(entry_limit="once_per_period", entry_period=days(40)))
    journey_harness.emit("thing.happened", user_id="u1")
    journey_harness.advance(days(31))
    journey_harness.emit("thing.happened", user_id="u1")

    assert journey_harness.skip_reasons("guarded", "u1") == ["period_not_elapsed"]


def test_an_unsubscribed_user_is_not_enrolled(journey_harness, register):
    register(journey())
    journey_harness.emit("other.event", user_id="u1")
    contact_unsubscribe(contact=journey_harness.contact("u1"))
    journey_harness.emit("thing.happened", user_id="u1")

    assert journey_harness.skip_reasons("guarded", "u1") == ["user_unsubscribed"]


def test_a_live_run_blocks_a_second_one(journey_harness, register):
    register(journey(entry_limit="unlimited"))
    journey_harness.emit("thing.happened", user_id="u1")
    journey_harness.emit("thing.happened", user_id="u1")

    assert JourneyRun.objects.filter(journey_id="guarded").count() == 1
    assert journey_harness.skip_reasons("guarded", "u1") == ["already_active"]


def test_guards_run_in_the_documented_order(journey_harness, register):
    # Disabled AND conditions unmet AND unsubscribed: the first guard's reason wins.
    register(journey(enabled=False, trigger=on("thing.happened", where=lambda b: b.prop("x").exists())))
    journey_harness.emit("other.event", user_id="u1")
    contact_unsubscribe(contact=journey_harness.contact("u1"))
    journey_harness.emit("thing.happened", user_id="u1")

    assert journey_harness.skip_reasons("guarded", "u1") == ["journey_disabled"]


def test_the_same_trigger_event_enrolls_once(journey_harness, register):
    guarded = register(journey(entry_limit="unlimited"))
    result = journey_harness.emit("thing.happened", user_id="u1")
    payload = {"contact_id": result.contact.id, "trigger_event_id": result.event.id, "properties": {}}

    again = journey_enroll(journey=guarded, engine_run_id="another-engine-run", **payload)

    assert again.run is None and again.skip_reason == "duplicate_trigger"
    assert JourneyRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_enrollments_cannot_double_enroll(register):
    """The partial unique constraint holds even when both requests pass the guards at once."""
    guarded = register(journey(entry_limit="unlimited"))
    events = [event_ingest(name="other.event", user_id="u1", dispatch=False).event for _ in range(6)]
    barrier = threading.Barrier(len(events))
    outcomes = []

    def enroll(event):
        try:
            barrier.wait()
            outcomes.append(
                journey_enroll(
                    journey=guarded,
                    contact_id=event.contact_id,
                    trigger_event_id=event.id,
                    properties={},
                    engine_run_id=f"engine-{event.id}",
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=enroll, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert JourneyRun.objects.filter(status__in=["active", "waiting"]).count() == 1
    assert sum(o.run is not None for o in outcomes) == 1
    assert set(EnrollmentSkip.objects.values_list("reason", flat=True)) == {"already_active"}


def test_the_isolations_enrollment_is_one_statement(journey_harness, register, enrollment_statements):
    from django.test.utils import CaptureQueriesContext

    register(journey(entry_limit="unlimited"))
    journey_harness.emit("other.event", user_id="u1")
    with CaptureQueriesContext(connection) as captured:
        journey_harness.emit("thing.happened", user_id="u1")

    assert journey_harness.run("guarded", "u1").status == "waiting"
    enrollment = [
        q["sql"] for q in captured if "journeys_journeysetting" in q["sql"] or "exit_candidates" in q["sql"]
    ]
    assert len(enrollment) == {"two statements": 2, "one statement": 1}[enrollment_statements], enrollment
