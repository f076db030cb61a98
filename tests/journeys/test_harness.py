"""The harness behaves like the engine, so what passes on it holds in production."""

from __future__ import annotations

from datetime import timedelta

from journeys.definition import define_journey, durable_task
from journeys.durations import days, hours
from journeys.send import send_email
from journeys.testing import DEFAULT_START

RESULTS: dict = {}


@define_journey(id="harness-asker", name="asker", trigger="ask", entry_limit="unlimited")
async def asker(user, ctx):
    answer = await ctx.wait_for_event("answer", timeout=days(1), label="await-answer")
    RESULTS["answer"] = answer
    await ctx.checkpoint("timed-out" if answer.timed_out else "answered")


def test_an_event_posted_to_the_http_api_starts_its_journey_at_once(journey_harness, api):
    response = api.post("/v1/events", {"name": "user.created", "userId": "ada", "email": "ada@example.com"})
    assert response.status_code == 202

    assert journey_harness.templates_sent_to("ada@example.com") == ["activation/welcome"]
    assert journey_harness.run("activation-welcome", "ada").entered_at == DEFAULT_START


def test_an_event_posted_to_the_http_api_mid_wait_resolves_it_at_the_time_it_was_posted(
    journey_harness, api, register
):
    register(asker)
    journey_harness.emit("ask", user_id="ada")
    journey_harness.advance(hours(3))
    api.post("/v1/events", {"name": "answer", "userId": "ada", "eventProperties": {"n": 7}})

    run = journey_harness.run("harness-asker", "ada")
    assert (run.status, run.current_node) == ("completed", "answered")
    assert RESULTS["answer"].properties == {"n": 7}
    assert run.ended_at == DEFAULT_START + timedelta(hours=3)


def test_an_event_that_arrives_while_the_worker_is_down_resolves_the_wait_on_resume(
    journey_harness, register
):
    register(asker)
    journey_harness.emit("ask", user_id="ada")
    run = journey_harness.run("harness-asker", "ada")
    journey_harness.advance(hours(2))
    journey_harness.crash(run)
    journey_harness.emit("answer", user_id="ada", properties={"n": 1})
    journey_harness.advance(hours(1))
    journey_harness.resume(run)

    assert journey_harness.run("harness-asker", "ada").current_node == "answered"
    assert RESULTS["answer"].properties == {"n": 1}


def test_emit_at_a_later_moment_moves_the_clock_and_at_an_earlier_one_backdates_the_event(journey_harness):
    later = journey_harness.emit("feature.used", user_id="ada", at=hours(5))
    assert later.event.occurred_at == DEFAULT_START + timedelta(hours=5) == journey_harness.now()

    earlier = journey_harness.emit("feature.used", user_id="ada", at=DEFAULT_START)
    assert earlier.event.occurred_at == DEFAULT_START
    assert earlier.event.received_at == DEFAULT_START + timedelta(hours=5)


ATTEMPTS: list[str] = []


@durable_task(name="harness-flaky", on_events=["user.created"], retries=2)
async def flaky(payload):
    ATTEMPTS.append(payload["user_id"])
    raise RuntimeError("the provider is down")


def test_a_task_that_raises_is_retried_and_fails_alone(journey_harness, register):
    ATTEMPTS.clear()
    register(flaky)
    journey_harness.emit("user.created", user_id="ada", email="ada@example.com")

    assert ATTEMPTS == ["ada", "ada", "ada"]  # the first attempt and two retries
    [failure] = journey_harness.task_failures
    assert failure.task == "harness-flaky" and "provider is down" in str(failure.error)
    # The journey on the same event was delivered regardless.
    assert journey_harness.templates_sent_to("ada@example.com") == ["activation/welcome"]


def test_a_journey_registered_for_one_test_is_gone_afterwards(journey_register):
    from journeys.registry import registry

    @define_journey(id="harness-ad-hoc", name="ad hoc", trigger="ad.hoc")
    async def ad_hoc(user, ctx):
        await send_email(to=user.email, user_id=user.id, template="activation/nudge")

    with_it = journey_register(ad_hoc)
    assert registry.get("harness-ad-hoc") is with_it


def test_the_ad_hoc_journey_of_the_previous_test_is_not_registered_any_more():
    from journeys.registry import registry

    assert registry.get("harness-ad-hoc") is None


def test_an_event_that_arrives_after_the_deadline_while_the_worker_is_down_does_not_resolve_the_wait(
    journey_harness, register
):
    register(asker)
    journey_harness.emit("ask", user_id="ada")
    run = journey_harness.run("harness-asker", "ada")
    journey_harness.crash(run)
    journey_harness.emit("answer", user_id="ada", at=days(2))
    journey_harness.resume(run)

    assert journey_harness.run("harness-asker", "ada").current_node == "timed-out"
