"""Journeys that exist only for the end-to-end tests (loaded by the test worker)."""

from __future__ import annotations

from emails.send import send_email
from journeys.definition import define_journey
from journeys.durations import days


def _fanout(journey_id: str):
    @define_journey(id=journey_id, name=f"E2E {journey_id}", trigger="e2e.fanout", entry_limit="unlimited")
    async def fanout(user, ctx):
        await ctx.checkpoint("entered")
        await ctx.sleep(days(1), label="nap")
        await send_email(to=user.email, user_id=user.id, template="activation/nudge", subject=journey_id)

    return fanout


JOURNEYS = [_fanout("e2e-fanout-a"), _fanout("e2e-fanout-b"), _fanout("e2e-fanout-c")]
