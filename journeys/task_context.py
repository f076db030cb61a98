"""What a custom durable task can do beyond database work: wait, durably.

A task (`@durable_task`) has no run row and no step log: it is short, and everything it does is
keyed so a retry finds what the first attempt did. It may still pause — a lead alert holds for a
grace window so context that follows is folded into one alert — on the engine's durable sleep,
which the virtual-time harness plays on its clock like any journey sleep.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from journeys.context import DurableBackend, current_backend
from journeys.durations import Duration, journey_time

_NO_RUN = UUID(int=0)  # a task's sleep belongs to no journey run


class NotInATask(RuntimeError):
    pass


def _backend() -> DurableBackend:
    backend = current_backend.get()
    if backend is None:
        raise NotInATask("task_sleep and task_now work only inside a @durable_task")
    return backend


def task_now() -> datetime:
    """The engine's clock (the harness's virtual one in tests)."""
    return _backend().now()


async def task_sleep(duration: Duration, *, label: str = "") -> None:
    """Pause the task for `duration` (journey time: compressed by `HOGSEND_TIME_SCALE`).

    Always the written duration, never "what is left": the engine matches a retried task's
    durable calls by position.
    """
    backend = _backend()
    span = journey_time(duration)
    await backend.sleep(
        run_id=_NO_RUN,
        seq=0,
        duration=span,
        deadline=backend.now() + span,
        label=label or f"sleep:{duration}",
    )
