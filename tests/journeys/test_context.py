from __future__ import annotations

from datetime import timedelta

from contacts.models import Event
from contacts.services import contact_unsubscribe
from journeys.definition import define_journey
from journeys.durations import days, hours, minutes
from journeys.models import JourneyRun, RunStep
from journeys.send import send_email

RESULTS: dict = {}


def test_sleep_parks_the_run_as_waiting_with_its_label_then_resumes(journey_harness, register):
    @define_journey(id="sleepy", name="Sleepy", trigger="go")
    async def sleepy(user, ctx):
        RESULTS["slept"] = await ctx.sleep(days(2), label="two-days")
        await ctx.checkpoint("after-sleep")
        await ctx.sleep(hours(1))

    register(sleepy)
    start = journey_harness.now()
    journey_harness.emit("go", user_id="u1")
    run = journey_harness.run("sleepy", "u1")
    assert (run.status, run.current_node) == ("waiting", "two-days")
    assert run.waiting_until == start + timedelta(days=2)

    journey_harness.advance(days(2))
    run.refresh_from_db()
    assert (run.status, run.current_node) == ("waiting", "sleep:1h")
    assert RESULTS["slept"].slept_at == start
    assert RESULTS["slept"].resumed_at == start + timedelta(days=2)

    journey_harness.advance(hours(1))
    run.refresh_from_db()
    assert run.status == "completed" and run.ended_at == start + timedelta(days=2, hours=1)
    assert list(run.steps.values_list("kind", "label")) == [
        ("sleep", "two-days"),
        ("checkpoint", "after-sleep"),
        ("sleep", "sleep:1h"),
    ]


def test_sleep_until_wakes_at_that_moment(journey_harness, register):
    @define_journey(id="until", name="Until", trigger="go")
    async def until(user, ctx):
        RESULTS["until"] = await ctx.sleep_until(ctx.backend.now() + timedelta(hours=5), label="five")

    register(until)
    start = journey_harness.now()
    journey_harness.emit("go", user_id="u1")
    journey_harness.advance(hours(4))
    assert journey_harness.run("until", "u1").status == "waiting"
    journey_harness.advance(hours(1))
    assert RESULTS["until"].resumed_at == start + timedelta(hours=5)


@define_journey(id="waiter", name="Waiter", trigger="go")
async def waiter(user, ctx):
    result = await ctx.wait_for_event(
        "reply", timeout=days(1), label="await-reply", where=lambda b: b.prop("ok").eq(True)
    )
    RESULTS["wait"] = result
    await ctx.checkpoint("timed-out" if result.timed_out else "replied")


def test_wait_for_event_resolves_with_the_events_properties(journey_harness, register):
    register(waiter)
    journey_harness.emit("go", user_id="u1")
    run = journey_harness.run("waiter", "u1")
    assert (run.status, run.current_node) == ("waiting", "await-reply")

    journey_harness.advance(hours(3))
    journey_harness.emit("reply", user_id="u2", properties={"ok": True})  # someone else's reply
    journey_harness.emit("reply", user_id="u1", properties={"ok": False})  # fails `where`
    assert journey_harness.run("waiter", "u1").status == "waiting"
    journey_harness.emit("reply", user_id="u1", properties={"ok": True, "by": "Sam"})

    result = RESULTS["wait"]
    assert result.timed_out is False
    assert result.properties == {"ok": True, "by": "Sam"}
    assert result.occurred_at == journey_harness.now()
    assert journey_harness.run("waiter", "u1").current_node == "replied"


def test_wait_for_event_times_out(journey_harness, register):
    register(waiter)
    journey_harness.emit("go", user_id="u1")
    journey_harness.advance(hours(23))
    assert journey_harness.run("waiter", "u1").status == "waiting"
    journey_harness.advance(hours(1))

    assert RESULTS["wait"].timed_out is True
    assert journey_harness.run("waiter", "u1").current_node == "timed-out"


def test_wait_ignores_events_from_before_it_began_without_a_lookback(journey_harness, register):
    register(waiter)
    journey_harness.emit("reply", user_id="u1", properties={"ok": True})
    journey_harness.emit("go", user_id="u1")
    journey_harness.advance(days(1))
    assert RESULTS["wait"].timed_out is True


def test_lookback_sees_a_matching_event_shortly_before_the_wait(journey_harness, register):
    @define_journey(id="looker", name="Looker", trigger="go")
    async def looker(user, ctx):
        RESULTS["look"] = await ctx.wait_for_event("reply", timeout=days(1), lookback=hours(1))

    register(looker)
    journey_harness.emit("reply", user_id="u1", properties={"n": 1})
    journey_harness.advance(minutes(30))
    journey_harness.emit("go", user_id="u1")

    assert RESULTS["look"].timed_out is False and RESULTS["look"].properties == {"n": 1}
    assert journey_harness.run("looker", "u1").status == "completed"


def test_lookback_does_not_reach_further_back(journey_harness, register):
    @define_journey(id="looker", name="Looker", trigger="go")
    async def looker(user, ctx):
        RESULTS["look"] = await ctx.wait_for_event("reply", timeout=days(1), lookback=hours(1))

    register(looker)
    journey_harness.emit("reply", user_id="u1")
    journey_harness.advance(hours(2))
    journey_harness.emit("go", user_id="u1")
    assert journey_harness.run("looker", "u1").status == "waiting"


def test_history_has_event_counts_optionally_within_a_window(journey_harness, register):
    @define_journey(id="historian", name="Historian", trigger="go")
    async def historian(user, ctx):
        RESULTS["all"] = await ctx.history.has_event(user.id, "login")
        RESULTS["recent"] = await ctx.history.has_event(user.id, "login", within=days(2))
        RESULTS["never"] = await ctx.history.has_event(user.id, "purchase")

    register(historian)
    journey_harness.emit("login", user_id="u1")
    journey_harness.advance(days(5))
    journey_harness.emit("login", user_id="u1")
    journey_harness.emit("login", user_id="u2")  # another contact's: not theirs
    journey_harness.emit("go", user_id="u1")

    assert (RESULTS["all"].found, RESULTS["all"].count) == (True, 2)
    assert (RESULTS["recent"].found, RESULTS["recent"].count) == (True, 1)
    assert (RESULTS["never"].found, RESULTS["never"].count) == (False, 0)


def test_history_of_journeys_and_emails(journey_harness, register):
    @define_journey(id="historian", name="Historian", trigger="go")
    async def historian(user, ctx):
        RESULTS["welcome"] = await ctx.history.journey(user.id, "activation-welcome")
        RESULTS["other"] = await ctx.history.journey(user.id, "churn-prevention")
        RESULTS["email"] = await ctx.history.email(user.email, "activation/welcome")
        RESULTS["no-email"] = await ctx.history.email(user.email, "churn-payment-failed")

    register(historian)
    journey_harness.start("activation-welcome", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(2))
    journey_harness.emit("go", user_id="u1", email="u1@example.com")

    welcome = RESULTS["welcome"]
    assert (welcome.completed, welcome.entry_count) == (True, 1)
    assert welcome.last_completed_at == journey_harness.now()
    assert (RESULTS["other"].completed, RESULTS["other"].entry_count) == (False, 0)
    assert (RESULTS["email"].sent, RESULTS["email"].count) == (True, 1)
    assert RESULTS["no-email"].sent is False and RESULTS["no-email"].last_sent_at is None


def test_guard_is_subscribed_reflects_unsubscribe_mid_journey(journey_harness, register):
    @define_journey(id="polite", name="Polite", trigger="go")
    async def polite(user, ctx):
        RESULTS["before"] = await ctx.guard.is_subscribed()
        await ctx.sleep(days(1))
        RESULTS["after"] = await ctx.guard.is_subscribed()

    register(polite)
    journey_harness.emit("go", user_id="u1")
    contact_unsubscribe(contact=journey_harness.contact("u1"))
    journey_harness.advance(days(1))

    assert (RESULTS["before"], RESULTS["after"]) == (True, False)
    # Unsubscribing does not exit the run.
    assert journey_harness.run("polite", "u1").status == "completed"


def test_trigger_goes_through_the_full_pipeline(journey_harness, register):
    @define_journey(id="trigger-happy", name="Trigger", trigger="go", exit_on=["stop"])
    async def trigger_happy(user, ctx):
        await ctx.trigger(
            "user.created", user_id=user.id, user_email="u1@example.com", properties={"from": "journey"}
        )
        await ctx.trigger("stop")  # exits this very run
        await ctx.checkpoint("never-reached")

    register(trigger_happy)
    journey_harness.emit("go", user_id="u1")

    # It started another journey (the welcome series) ...
    assert journey_harness.run("activation-welcome", "u1").status == "waiting"
    assert journey_harness.templates_sent_to("u1@example.com") == ["activation/welcome"]
    # ... and exited itself, so nothing after the exit ran.
    run = journey_harness.run("trigger-happy", "u1")
    assert run.status == "exited" and run.exit_reason == "exit_on:stop"
    assert run.current_node != "never-reached"
    assert [e.name for e in journey_harness.triggered()] == ["user.created", "stop"]


def test_now_is_fixed_at_first_execution(journey_harness, register):
    @define_journey(id="clock", name="Clock", trigger="go")
    async def clock(user, ctx):
        RESULTS.setdefault("nows", []).append(await ctx.now())
        await ctx.sleep(days(1))

    register(clock)
    RESULTS.pop("nows", None)
    journey_harness.emit("go", user_id="u1")
    journey_harness.advance(hours(5))
    journey_harness.replay(journey_harness.run("clock", "u1"))

    first, replayed = RESULTS["nows"]
    assert first == replayed


def test_exit_ends_the_run_with_its_reason(journey_harness, register):
    @define_journey(id="quitter", name="Quitter", trigger="go")
    async def quitter(user, ctx):
        await ctx.exit("goal_already_met")
        await ctx.checkpoint("unreachable")

    register(quitter)
    journey_harness.emit("go", user_id="u1")
    run = journey_harness.run("quitter", "u1")
    assert (run.status, run.exit_reason) == ("exited", "goal_already_met")


def test_a_journey_error_fails_the_run_keeps_the_error_and_emits_journey_failed(journey_harness, register):
    @define_journey(id="buggy", name="Buggy", trigger="go")
    async def buggy(user, ctx):
        await ctx.checkpoint("before-bug")
        raise KeyError("plan")

    register(buggy)
    journey_harness.emit("go", user_id="u1")
    run = journey_harness.run("buggy", "u1")

    assert run.status == "failed" and "KeyError" in run.error
    failed = Event.objects.get(name="journey.failed")
    assert failed.properties["run_id"] == str(run.id)


def test_a_completed_run_emits_journey_completed(journey_harness, register):
    @define_journey(id="brief", name="Brief", trigger="go")
    async def brief(user, ctx):
        await ctx.checkpoint("done")

    register(brief)
    journey_harness.emit("go", user_id="u1")
    run = journey_harness.run("brief", "u1")
    assert run.status == "completed"
    assert Event.objects.filter(name="journey.completed", properties__run_id=str(run.id)).count() == 1


def test_the_suppress_window_holds_a_second_send(journey_harness, register):
    @define_journey(id="chatty", name="Chatty", trigger="go", suppress=hours(12))
    async def chatty(user, ctx):
        await send_email(to=user.email, template="activation/nudge")
        await ctx.sleep(hours(1))
        await send_email(to=user.email, template="activation/nudge")
        await ctx.sleep(hours(12))
        await send_email(to=user.email, template="activation/nudge")

    register(chatty)
    journey_harness.emit("go", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(1))

    statuses = [(e.status, e.status_reason) for e in journey_harness.emails("u1@example.com")]
    assert statuses == [("sent", ""), ("suppressed", "suppress_window"), ("sent", "")]


def test_an_exit_mid_sleep_stops_the_journey_and_nothing_more_is_sent(journey_harness):
    journey_harness.start("churn-prevention", user_id="u1", email="u1@example.com")
    journey_harness.advance(hours(6))
    journey_harness.emit("payment.succeeded", user_id="u1")
    journey_harness.advance(days(7))

    assert journey_harness.run("churn-prevention", "u1").status == JourneyRun.Status.EXITED
    assert journey_harness.templates_sent_to("u1@example.com") == ["churn-payment-failed"]
    assert journey_harness.parked() == []


def test_every_ctx_call_is_in_the_step_log(journey_harness):
    journey_harness.start("activation-welcome", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(2))
    run = journey_harness.run("activation-welcome", "u1")

    assert list(run.steps.order_by("seq").values_list("seq", "kind")) == [
        (1, RunStep.Kind.SEND),
        (2, RunStep.Kind.SLEEP),
        (3, RunStep.Kind.HISTORY),
        (4, RunStep.Kind.CHECKPOINT),
        (5, RunStep.Kind.SEND),
    ]
