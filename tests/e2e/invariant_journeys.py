"""Journeys the invariant tests run on the real engine (loaded by the test worker)."""

from __future__ import annotations

from journeys.definition import define_journey
from journeys.durations import days
from tests.journeys.condition_cases import CASES

PROBE = "e2e.condition.probe"


@define_journey(
    id="e2e-condition-probe",
    name="E2E condition probe",
    trigger="e2e.condition.start",
    entry_limit="unlimited",
)
async def condition_probe(user, ctx):
    """Wait for a probe event with the `where` of one case of the condition table; record whether
    the engine's CEL let it through."""
    condition = CASES[int(user.properties["case"])][0]
    # A long timeout: a probe that reaches the engine late must not pass for a non-match.
    arrived = await ctx.wait_for_event(PROBE, timeout=days(15), label="probe", where=condition)
    await ctx.checkpoint("timed-out" if arrived.timed_out else "matched")


JOURNEYS = [condition_probe]
