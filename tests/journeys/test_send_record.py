"""A send's step record goes with the run's next unit of database work (the park of the sleep after
it writes both in one statement), and nothing is lost or sent twice for it."""

from __future__ import annotations

import pytest
from django.db import connection

from emails.models import EmailLog
from journeys.definition import define_journey
from journeys.durations import days
from journeys.journey_map import journey_map_read
from journeys.models import JourneyRun, RunStep
from journeys.send import send_email


def _run_updates() -> int:
    """Updates of journeys_journeyrun rows in this (the test's) transaction so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'journeys_journeyrun'")
        return cursor.fetchone()[0]


def test_a_send_then_a_sleep_update_the_run_row_once(journey_harness):
    before = _run_updates()
    journey_harness.start("activation-welcome", user_id="ada", email="ada@example.com")

    run = journey_harness.run("activation-welcome", "ada")
    assert (run.status, run.current_node, run.map_node) == ("waiting", "post-welcome", "sleep:post-welcome")
    assert list(run.steps.order_by("seq").values_list("seq", "kind", "label")) == [
        (1, RunStep.Kind.SEND, "activation/welcome"),
        (2, RunStep.Kind.SLEEP, "post-welcome"),
    ]
    assert run.steps.get(seq=1).result["status"] == "sent"
    # The park, with the send's record in it: one new version of the run's row, not two.
    assert _run_updates() - before == 1
    edges = {(s, t): n for s, t, n in journey_map_read(journey_id="activation-welcome").edges}
    assert edges == {("", "send:activation/welcome"): 1, ("send:activation/welcome", "sleep:post-welcome"): 1}


def test_a_send_whose_record_a_crash_lost_is_not_sent_again_on_replay(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada", email="ada@example.com")
    run = journey_harness.run("activation-welcome", "ada")
    # As if the process died after the send, before the statement that records it: no steps, live.
    run.steps.all().delete()
    JourneyRun.objects.filter(pk=run.pk).update(status="active", current_node="", map_node="")

    journey_harness.replay(run)

    assert journey_harness.templates_sent_to("ada@example.com") == ["activation/welcome"]
    assert EmailLog.objects.count() == 1
    run.refresh_from_db()
    assert run.status == "waiting"
    assert list(run.steps.order_by("seq").values_list("seq", "kind")) == [
        (1, RunStep.Kind.SEND),
        (2, RunStep.Kind.SLEEP),
    ]


@pytest.mark.parametrize("then", ["complete", "exit", "fail", "send"])
def test_a_send_is_recorded_whatever_the_run_does_next(journey_harness, register, then):
    @define_journey(id=f"send-then-{then}", name="t", trigger="go")
    async def journey(user, ctx):
        await send_email(to=user.email, template="activation/welcome")
        if then == "exit":
            await ctx.exit("done_early")
        if then == "fail":
            raise RuntimeError("after the send")
        if then == "send":
            await send_email(to=user.email, template="activation/nudge")
            await ctx.sleep(days(1), label="rest")

    register(journey)
    journey_harness.emit("go", user_id="ada", email="ada@example.com")

    run = journey_harness.run(f"send-then-{then}", "ada")
    status = {"complete": "completed", "exit": "exited", "fail": "failed", "send": "waiting"}[then]
    assert run.status == status
    kinds = list(run.steps.order_by("seq").values_list("kind", flat=True))
    assert kinds == {"send": ["send", "send", "sleep"]}.get(then, ["send"])
    assert [s.result["status"] for s in run.steps.filter(kind="send")] == ["sent"] * kinds.count("send")
