"""An exit event that occurs after the trigger ends the run before its first send, even when it
arrives before the run is live (a client SDK's batch, a slow engine)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contacts.ingest import EventDraft, events_ingest
from journeys.durations import days, hours

pytestmark = pytest.mark.usefixtures(
    "enrollment_statements"
)  # as production enrolls, and as the backtest does

CY = "cy@example.com"
CHECKOUT = "conversion-abandoned-checkout"


def test_a_batch_with_the_abandon_then_the_purchase_sends_no_winback(journey_harness):
    events_ingest(
        drafts=[
            EventDraft(name="checkout.abandoned", user_id="cy", email=CY),
            EventDraft(name="checkout.completed", user_id="cy", email=CY),
        ]
    )
    journey_harness.advance(days(2))

    assert journey_harness.templates_sent_to(CY) == []
    run = journey_harness.run(CHECKOUT, "cy")
    assert (run.status, run.exit_reason) == ("exited", "exit_on:checkout.completed")


def test_the_same_batch_over_the_http_api_sends_no_winback(journey_harness, api):
    response = api.post(
        "/v1/events/batch",
        {
            "events": [
                {"name": "checkout.abandoned", "userId": "cy", "email": CY},
                {"name": "checkout.completed", "userId": "cy"},
            ]
        },
    )
    assert response.status_code in (200, 202, 207)
    journey_harness.advance(days(2))

    assert journey_harness.templates_sent_to(CY) == []
    assert journey_harness.run(CHECKOUT, "cy").status == "exited"


def test_a_purchase_that_occurred_after_the_abandon_but_arrives_first_still_exits(journey_harness):
    abandoned_at = journey_harness.now()
    journey_harness.emit("checkout.completed", user_id="cy", email=CY, at=abandoned_at + timedelta(minutes=5))
    journey_harness.emit("checkout.abandoned", user_id="cy", email=CY, at=abandoned_at)
    journey_harness.advance(days(2))

    assert journey_harness.templates_sent_to(CY) == []
    assert journey_harness.run(CHECKOUT, "cy").exit_reason == "exit_on:checkout.completed"


def test_a_purchase_from_before_the_abandon_does_not_stop_the_winback(journey_harness):
    journey_harness.emit("checkout.completed", user_id="cy", email=CY)
    journey_harness.advance(hours(1))
    journey_harness.emit("checkout.abandoned", user_id="cy", email=CY)

    assert journey_harness.templates_sent_to(CY) == ["conversion-winback-offer"]
    assert journey_harness.run(CHECKOUT, "cy").status == "waiting"


def test_an_exit_rule_with_conditions_only_exits_on_a_matching_event(journey_harness, register):
    from journeys.definition import define_journey, on
    from journeys.send import send_email

    @define_journey(
        id="ordering-conditional-exit",
        name="ordering",
        trigger="order.started",
        exit_on=[on("order.changed", where=lambda b: b.prop("state").eq("done"))],
    )
    async def ordering(user, ctx):
        await send_email(to=user.email, user_id=user.id, template="conversion-winback-offer")

    register(ordering)
    events_ingest(
        drafts=[
            EventDraft(name="order.started", user_id="a", email="a@example.com"),
            EventDraft(name="order.changed", user_id="a", properties={"state": "open"}),
            EventDraft(name="order.started", user_id="b", email="b@example.com"),
            EventDraft(name="order.changed", user_id="b", properties={"state": "done"}),
        ]
    )
    assert journey_harness.run("ordering-conditional-exit", "a").status == "completed"
    assert journey_harness.run("ordering-conditional-exit", "b").status == "exited"


def test_a_week_old_purchase_arriving_after_the_run_started_does_not_end_it(journey_harness):
    """Ingest's exit rules go by event time, as enrollment does: a late event from before the
    trigger leaves the run alone, and its later emails still go."""
    bo = "bo@example.com"
    journey_harness.start("churn-prevention", user_id="bo", email=bo)
    journey_harness.advance(hours(2))
    late = journey_harness.emit("payment.succeeded", user_id="bo", at=timedelta(days=-7))

    assert late.exited_run_ids == []
    assert journey_harness.run("churn-prevention", "bo").status == "waiting"
    journey_harness.advance(days(4))
    assert len([e for e in journey_harness.emails(bo) if e.status == "sent"]) == 3
    assert journey_harness.run("churn-prevention", "bo").status == "completed"


def test_a_late_exit_event_stamped_at_the_trigger_moment_still_ends_the_run(journey_harness):
    bo = "bo@example.com"
    run = journey_harness.start("churn-prevention", user_id="bo", email=bo)
    journey_harness.advance(hours(2))
    tie = journey_harness.emit("payment.succeeded", user_id="bo", at=run.trigger_event.occurred_at)

    assert tie.exited_run_ids == [run.id]
    journey_harness.advance(days(4))
    assert [e.status for e in journey_harness.emails(bo)] == ["sent"]
    assert journey_harness.run("churn-prevention", "bo").exit_reason == "exit_on:payment.succeeded"


def test_a_run_whose_trigger_event_is_gone_is_measured_from_its_entry(journey_harness):
    from contacts.models import Event

    run = journey_harness.start("churn-prevention", user_id="bo", email="bo@example.com")
    Event.objects.filter(pk=run.trigger_event_id).delete()  # retention pruned it
    journey_harness.advance(hours(2))

    assert journey_harness.emit("payment.succeeded", user_id="bo", at=timedelta(days=-7)).exited_run_ids == []
    assert journey_harness.emit("payment.succeeded", user_id="bo").exited_run_ids == [run.id]
