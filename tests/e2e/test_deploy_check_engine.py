"""`manage.py journeys_check` on a real Hatchet engine: a deploy that would break a parked run, and
the operator ending it with a reason, which the engine cancels."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from journeys.definition import define_journey
from journeys.durations import days
from journeys.models import JourneyRun
from journeys.registry import registry
from journeys.send import send_email
from tests.e2e.conftest import DAY, wait_until
from tests.e2e.test_journeys_on_engine import post, run_of, subjects

# Compressed time on a shared two-core machine: one rerun, as for the other journey tests on the engine.
pytestmark = [pytest.mark.engine, pytest.mark.flaky(reruns=1, reruns_delay=2)]


@define_journey(id="e2e-await", name="E2E wait for an answer", trigger="e2e.ask", entry_limit="unlimited")
async def await_answer_rewritten(user, ctx):
    """The deploy: the wait for an answer became a plain pause at the same position."""
    await ctx.sleep(days(2), label="awaiting-answer")
    await send_email(to=user.email, user_id=user.id, template="activation/nudge", subject="paused")


def test_a_breaking_deploy_is_caught_and_the_ended_runs_are_cancelled_in_the_engine(api, live, smtp):
    post(api, "e2e.ask", "deploy-1")
    wait_until(
        lambda: (r := run_of("e2e-await", "deploy-1")) and r.current_node == "awaiting-answer",
        timeout=10 * DAY,
        what="the run parked in its wait",
    )
    # This process now has the new code; the worker still runs the old one, parked in the engine.
    registry.unregister("e2e-await")
    registry.register(await_answer_rewritten)

    out = io.StringIO()
    with pytest.raises(SystemExit) as stop:
        call_command("journeys_check", "e2e-await", "--json", stdout=out)
    assert stop.value.code == 1
    (journey,) = json.loads(out.getvalue())["journeys"]
    assert [(r["user_id"], r["outcome"]) for r in journey["runs"]] == [("deploy-1", "nondeterministic")]

    out = io.StringIO()
    call_command("journeys_check", "e2e-await", "--end-broken", "answer flow rewritten", stdout=out)
    assert "ended 1 runs that would break (answer flow rewritten)" in out.getvalue()
    run = run_of("e2e-await", "deploy-1")
    assert (run.status, run.exit_reason) == (JourneyRun.Status.EXITED, "answer flow rewritten")

    from journeys.runtime.engine import hatchet_client

    wait_until(
        lambda: "CANCEL" in str(hatchet_client().runs.get_status(run.engine_run_id)).upper(),
        timeout=10 * DAY,
        what="the engine to cancel the run",
    )
    # Cancelled in the engine and exited here: the old code's timeout email never goes out.
    assert subjects(smtp, "deploy-1") == []
    assert run_of("e2e-await", "deploy-1").status == JourneyRun.Status.EXITED
