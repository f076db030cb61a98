"""Journeys `bin/bench` loads beside the shipped ones (HOGSEND_JOURNEY_MODULES=...,bench.journeys)."""

from __future__ import annotations

import zlib

from journeys.definition import define_journey
from journeys.durations import days
from journeys.send import send_email
from journeys.shipped import templates as _shipped_templates  # noqa: F401  (registers their emails)


@define_journey(
    id="bench-park",
    name="Bench — park for a month",
    trigger="bench.park",
    entry_limit="unlimited",
    exit_on=["bench.leave"],
)
async def bench_park(user, ctx):
    """Half the contacts park in a durable sleep, half in a wait for an event that never comes."""
    if zlib.crc32(user.id.encode()) % 2:
        await ctx.sleep(days(30), label="parked-sleep")
    else:
        await ctx.wait_for_event("bench.never", timeout=days(30), label="parked-wait")


@define_journey(
    id="bench-wake",
    name="Bench — wait, then send",
    trigger="bench.wait",
    entry_limit="unlimited",
)
async def bench_wake(user, ctx):
    """Wake-up latency: the awaited event arrives, the email goes out."""
    await ctx.wait_for_event("bench.wake", timeout=days(30), label="waiting")
    await send_email(to=user.email, user_id=user.id, template="activation/welcome")


@define_journey(
    id="bench-backtest",
    name="Bench — a month of signups to backtest",
    trigger="bench.signup",
    exit_on=["bench.churned"],
)
async def bench_backtest(user, ctx):
    """What `bin/backtest-bench` replays: a welcome, a wait for activation (three days), a
    branch on it and on a history read, a sleep and a last email."""
    await send_email(to=user.email, user_id=user.id, template="activation/welcome")
    activated = await ctx.wait_for_event("bench.activated", timeout=days(3), label="await-activation")
    if activated.timed_out:
        await send_email(to=user.email, user_id=user.id, template="activation/nudge")
        return
    await ctx.sleep(days(1), label="after-activation")
    if (await ctx.history.has_event(user.id, "bench.used")).found:
        await send_email(to=user.email, user_id=user.id, template="activation/advanced")


JOURNEYS = [bench_park, bench_wake, bench_backtest]
