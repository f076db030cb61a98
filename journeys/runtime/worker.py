"""Every loaded journey and custom task as a Hatchet durable task, and the worker that runs them."""

# No `from __future__ import annotations` here: the SDK reads the task functions' type hints at
# runtime, and string annotations would not resolve inside the factory functions.

import json
import logging
import os
import signal
import socket
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone
from hatchet_sdk import DurableContext, EmptyModel
from hatchet_sdk.runnables.eviction import EvictionPolicy

from journeys.definition import DurableTask, Journey
from journeys.durations import journey_time
from journeys.registry import registry
from journeys.runner import journey_execute, task_execute
from journeys.runtime.backend import HatchetBackend
from journeys.runtime.engine import journey_task_name
from journeys.runtime.eviction import install_indexed_eviction_cache

logger = logging.getLogger(__name__)
HEARTBEAT_KEY = "hogsend:workers"
HEARTBEAT_EVERY = 10
# Journeys last weeks: the engine must not time out a run that is mostly parked in durable waits.
JOURNEY_EXECUTION_TIMEOUT = timedelta(days=365)
# A parked journey holds a durable slot until evicted; evicted runs replay from the top (the step
# log makes that safe), so free slots early and whenever the worker runs short of them.
JOURNEY_EVICTION = EvictionPolicy(ttl=timedelta(minutes=5), allow_capacity_eviction=True, priority=0)


def build_workflows(hatchet: Any) -> list[Any]:
    """One durable task per loaded journey and per custom task. They listen on their events only
    when the engine fans pushed events out (`ENGINE_START_MODE=events`); otherwise the relay
    creates their runs itself (`engine_start_runs`)."""
    workflows = []
    fan_out = settings.ENGINE_START_MODE == "events"

    def journey_task(journey: Journey) -> Any:
        @hatchet.durable_task(
            name=journey_task_name(journey),
            on_events=[journey.trigger.event] if fan_out else [],
            execution_timeout=JOURNEY_EXECUTION_TIMEOUT,
            schedule_timeout=timedelta(days=1),
            retries=0,
            eviction_policy=JOURNEY_EVICTION,
        )
        async def run(input: EmptyModel, ctx: DurableContext) -> dict[str, Any]:
            return await journey_execute(
                journey=journey,
                payload=input.model_dump(),
                engine_run_id=ctx.workflow_run_id,
                backend=HatchetBackend(ctx),
            )

        return run

    def custom_task(task: DurableTask) -> Any:
        @hatchet.durable_task(
            name=task.name,
            on_events=list(task.on_events) if fan_out else [],
            execution_timeout=max(journey_time(task.timeout), timedelta(minutes=1)),
            schedule_timeout=timedelta(days=1),
            retries=task.retries,
        )
        async def run(input: EmptyModel, ctx: DurableContext) -> Any:
            return await task_execute(task=task, payload=input.model_dump(), backend=HatchetBackend(ctx))

        return run

    for journey in registry.loaded():
        workflows.append(journey_task(journey))
    for task in registry.tasks():
        workflows.append(custom_task(task))
    return workflows


def worker_name() -> str:
    return f"hogsend-{socket.gethostname()}-{os.getpid()}"


class Heartbeat(threading.Thread):
    """Every few seconds, records this worker in a Redis hash that the rest of the product reads."""

    def __init__(self, name: str, journeys: list[str]) -> None:
        super().__init__(name="hogsend-heartbeat", daemon=True)
        self.worker = name
        self.journeys = journeys
        self.started_at = timezone.now().isoformat()
        self.stopped = threading.Event()

    def beat(self) -> None:
        record = {
            "worker": self.worker,
            "at": timezone.now().isoformat(),
            "started_at": self.started_at,
            "journeys": self.journeys,
        }
        try:
            _redis().hset(HEARTBEAT_KEY, self.worker, json.dumps(record))
        except Exception as error:
            logger.warning("worker heartbeat failed: %s", error)

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY):
            self.beat()

    def stop(self) -> None:
        self.stopped.set()
        try:
            _redis().hdel(HEARTBEAT_KEY, self.worker)
        except Exception:
            pass


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def worker_heartbeats(*, max_age_seconds: float = HEARTBEAT_EVERY * 3) -> list[dict[str, Any]]:
    """Workers that beat recently (read by Studio and /v1/health)."""
    from django.utils.dateparse import parse_datetime

    now = timezone.now()
    live = []
    for raw in _redis().hgetall(HEARTBEAT_KEY).values():
        record = json.loads(raw)
        age = (now - parse_datetime(record["at"])).total_seconds()
        if age <= max_age_seconds:
            live.append({**record, "age_seconds": round(age, 1)})
    return sorted(live, key=lambda r: r["worker"])


def run_worker(*, slots: int = 200, durable_slots: int = 20000, relay: bool = True) -> None:
    """Run the Hatchet worker (and, unless `relay=False`, an outbox relay) until SIGTERM/SIGINT.

    On the signal the SDK stops taking work and waits for running steps; journeys parked in
    sleeps and waits never finish on their own, so after `WORKER_SHUTDOWN_GRACE_SECONDS` the
    process leaves anyway. The engine hands its parked runs to the next worker, which replays them
    from the step log: nothing is lost, nothing is sent twice.
    """
    from journeys.runtime.engine import hatchet_client
    from journeys.runtime.relay import RelayThread

    install_indexed_eviction_cache()

    # Journey database work runs on a small thread pool (`run_db`): each thread keeps one
    # persistent connection, health-checked before each unit of work.
    connections["default"].settings_dict["CONN_MAX_AGE"] = 600
    hatchet = hatchet_client()
    workflows = build_workflows(hatchet)
    name = worker_name()
    loaded = [j.id for j in registry.loaded()]
    logger.info(
        "worker %s starting: journeys %s; tasks %s; time scale %s; relay %s",
        name,
        ", ".join(loaded) or "none",
        ", ".join(t.name for t in registry.tasks()) or "none",
        settings.HOGSEND_TIME_SCALE,
        "on" if relay else "off",
    )
    heartbeat = Heartbeat(name, loaded)
    heartbeat.beat()
    heartbeat.start()
    relay_thread = RelayThread() if relay else None
    if relay_thread:
        relay_thread.start()
    try:
        # A parked journey holds a durable slot until it is evicted, so size durable slots for the
        # number of contacts parked at once, not for CPU: a parked run is an idle coroutine.
        worker = hatchet.worker(name, slots=slots, durable_slots=durable_slots, workflows=workflows)
        _leave_after_grace(worker, on_leave=[heartbeat.stop, *([relay_thread.stop] if relay_thread else [])])
        worker.start()
    finally:
        if relay_thread:
            relay_thread.stop()
        heartbeat.stop()


def _leave_after_grace(worker: Any, *, on_leave: list[Any]) -> None:
    """Bound the SDK's graceful shutdown: its drain waits for every running task, parked ones too.

    The SDK installs its SIGTERM/SIGINT handlers when the worker is created; ours replace them,
    start the deadline, and hand over to the SDK's own drain.
    """
    graceful = worker._handle_exit_signal
    grace = settings.WORKER_SHUTDOWN_GRACE_SECONDS

    def leave() -> None:
        logger.warning("worker: still draining after %.0fs; leaving (parked runs resume elsewhere)", grace)
        for fn in on_leave:
            try:
                fn()
            except Exception:
                pass
        logging.shutdown()
        os._exit(0)

    def on_signal(signum: int, frame: Any) -> None:
        for fn in on_leave[1:]:  # stop relaying at once; the heartbeat goes when the process does
            fn()
        timer = threading.Timer(grace, leave)
        timer.daemon = True
        timer.start()
        graceful(signum, frame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
