"""Journeys the engine benchmark (bin/bench-engine) loads: one that sends at once, one that parks."""

from __future__ import annotations

from emails.send import send_email
from journeys.definition import define_journey
from journeys.durations import days
from journeys.shipped import templates as _shipped_templates  # noqa: F401  (registers their emails)


@define_journey(
    id="bench-instant", name="Bench — send at once", trigger="bench.signup", entry_limit="unlimited"
)
async def bench_instant(user, ctx):
    await send_email(to=user.email, user_id=user.id, template="activation/welcome")


@define_journey(
    id="bench-park", name="Bench — park for a month", trigger="bench.park", entry_limit="unlimited"
)
async def bench_park(user, ctx):
    await ctx.sleep(days(30), label="parked")


JOURNEYS = [bench_instant, bench_park]
