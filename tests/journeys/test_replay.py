"""Replays from the top, as after an eviction or a worker restart, change nothing a user sees."""

from __future__ import annotations

import pytest

from contacts.models import Event
from emails.models import EmailLog
from journeys.context import NonDeterministicJourney
from journeys.definition import define_journey
from journeys.durations import days, hours
from journeys.models import RunStep


def test_replaying_mid_sleep_does_not_resend_and_still_wakes_on_time(journey_harness):
    journey_harness.start("activation-welcome", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(1))
    run = journey_harness.run("activation-welcome", "u1")

    journey_harness.replay(run)
    journey_harness.replay(run)
    assert journey_harness.templates_sent_to("u1@example.com") == ["activation/welcome"]
    assert journey_harness.run("activation-welcome", "u1").status == "waiting"

    journey_harness.advance(days(1))
    assert journey_harness.templates_sent_to("u1@example.com") == ["activation/welcome", "activation/nudge"]


def test_a_replay_takes_the_recorded_branch_even_if_the_world_changed(journey_harness):
    journey_harness.start("activation-welcome", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(2))  # no feature.used: the nudge branch was taken and recorded
    run = journey_harness.run("activation-welcome", "u1")
    history_step = run.steps.get(kind=RunStep.Kind.HISTORY)
    assert history_step.result == {"found": False, "count": 0}

    # Now the world changes, and a replay runs the function from the top again.
    journey_harness.emit("feature.used", user_id="u1")
    run.status = "active"
    run.save(update_fields=["status"])
    journey_harness._spawn_journey(
        journey_harness._runs[0].journey, journey_harness._runs[0].payload, engine_run_id=run.engine_run_id
    )

    assert journey_harness.templates_sent_to("u1@example.com") == ["activation/welcome", "activation/nudge"]
    assert EmailLog.objects.count() == 2


def test_replaying_a_concierge_run_mid_wait_neither_repages_nor_resends(journey_harness, settings):
    settings.CSM_ALERT_EMAIL = "csm@hogsend.example"
    journey_harness.start(
        "concierge-onboarding",
        user_id="big",
        email="cto@big.example",
        properties={"plan": "enterprise", "seats": 300},
    )
    journey_harness.advance(hours(25))  # first wait timed out: re-paged, parked in await-csm-2
    run = journey_harness.run("concierge-onboarding", "big")
    assert run.current_node == "await-csm-2"
    pages_before = journey_harness.emails("csm@hogsend.example")

    journey_harness.replay(run)

    assert journey_harness.emails("csm@hogsend.example") == pages_before
    assert len(journey_harness.triggered("csm.assignment_requested")) == 2
    journey_harness.emit("csm.contacted", user_id="big", properties={"csm_name": "Sarah"})
    assert journey_harness.templates_sent_to("cto@big.example") == ["onboarding/concierge-intro"]


def test_replaying_after_completion_changes_nothing(journey_harness):
    journey_harness.start("churn-prevention", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(3))
    run = journey_harness.run("churn-prevention", "u1")
    assert run.status == "completed"
    sent = journey_harness.templates_sent_to("u1@example.com")
    events = Event.objects.count()

    journey_harness._spawn_journey(
        journey_harness._runs[0].journey, journey_harness._runs[0].payload, engine_run_id=run.engine_run_id
    )

    assert journey_harness.templates_sent_to("u1@example.com") == sent
    assert Event.objects.count() == events


def test_replay_all_mid_flight_for_many_journeys(journey_harness):
    for i in range(5):
        journey_harness.start("activation-welcome", user_id=f"u{i}", email=f"u{i}@example.com")
        journey_harness.start("churn-prevention", user_id=f"u{i}", email=f"u{i}@example.com")
    journey_harness.advance(hours(30))
    sent_before = EmailLog.objects.count()

    assert journey_harness.replay_all() == 10
    assert EmailLog.objects.count() == sent_before

    journey_harness.advance(days(3))
    for i in range(5):
        assert journey_harness.templates_sent_to(f"u{i}@example.com").count("churn-payment-failed") == 3
        assert journey_harness.templates_sent_to(f"u{i}@example.com").count("activation/nudge") == 1


def test_a_journey_that_changes_shape_on_replay_fails_loudly(journey_harness, register):
    shape = {"first": True}

    @define_journey(id="shifty", name="Shifty", trigger="go")
    async def shifty(user, ctx):
        if shape["first"]:
            await ctx.checkpoint("a")
        else:
            await ctx.history.has_event(user.id, "x")
        await ctx.sleep(days(1))

    register(shifty)
    journey_harness.emit("go", user_id="u1")
    shape["first"] = False
    journey_harness.replay(journey_harness.run("shifty", "u1"))

    run = journey_harness.run("shifty", "u1")
    assert run.status == "failed"
    assert NonDeterministicJourney.__name__ in run.error


@pytest.mark.parametrize("hours_in", [0, 12, 24, 36, 60, 72])
def test_replay_at_any_point_of_churn_prevention_sends_exactly_three(journey_harness, hours_in):
    journey_harness.start("churn-prevention", user_id="u1", email="u1@example.com")
    journey_harness.advance(hours(hours_in))
    run = journey_harness.run("churn-prevention", "u1")
    if run.is_live:
        journey_harness.replay(run)
    journey_harness.advance(days(4))
    assert journey_harness.templates_sent_to("u1@example.com") == ["churn-payment-failed"] * 3
