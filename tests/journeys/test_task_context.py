"""A custom task's durable pause: virtual time on the harness, refused outside a task."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from journeys.definition import durable_task
from journeys.durations import minutes
from journeys.task_context import NotInATask, task_now, task_sleep

woke: list[object] = []


@durable_task(name="test-pausing-task", on_events=["test.pause"])
async def pausing_task(payload):
    await task_sleep(minutes(10), label="pause")
    woke.append(task_now())
    return {"status": "done"}


def test_a_task_sleeps_on_the_harness_clock_and_wakes_when_it_passes(journey_harness, journey_register):
    woke.clear()
    journey_register(pausing_task)
    started = journey_harness.now()
    journey_harness.emit("test.pause", user_id="p1")

    assert [(kind, label) for kind, label, _ in journey_harness.parked()] == [("task", "pause")]
    journey_harness.advance(minutes(9))
    assert woke == []
    journey_harness.advance(minutes(1))
    assert woke == [started + minutes(10).as_timedelta()]
    assert journey_harness.parked() == []


def test_task_sleep_outside_a_task_says_where_it_works():
    # A loop of its own in a thread of its own: Playwright's sync API keeps a loop running in the
    # test thread once a browser test has run in the session.
    with ThreadPoolExecutor(max_workers=1) as pool, pytest.raises(NotInATask, match="inside a @durable_task"):
        pool.submit(asyncio.run, task_sleep(minutes(1))).result()
