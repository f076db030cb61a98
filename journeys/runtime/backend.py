"""The journey context's backend on Hatchet: durable sleeps and event waits, and DB access."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from journeys.conditions import Condition

T = TypeVar("T")
EVENT_KEY = "event"
TIMEOUT_KEY = "timeout"


class _StatementCount:
    """Counts the statements a unit of work ran (a Django execute wrapper)."""

    def __init__(self) -> None:
        self.ran = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        self.ran += 1
        return result


def _with_fresh_connection(fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
    """Run `fn` on this thread's connection; once more on a new one if the old one was dead.

    A long-lived worker outlives database restarts and idle timeouts. Pinging before every unit
    would cost a round trip each; instead a unit whose very first statement meets a dead
    connection (so nothing of it ran) is run again on a fresh connection. A failure after any
    statement ran is a real error and is raised.
    """
    close_old_connections()
    statements = _StatementCount()
    try:
        with connection.execute_wrapper(statements):
            return fn(**kwargs)
    except (OperationalError, InterfaceError):
        if statements.ran or connection.is_usable():
            raise
        connection.close()
        return fn(**kwargs)


_db_pool: ThreadPoolExecutor | None = None
_db_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _db_pool
    with _db_pool_lock:
        if _db_pool is None:
            _db_pool = ThreadPoolExecutor(
                max_workers=settings.WORKER_DB_THREADS, thread_name_prefix="hogsend-db"
            )
        return _db_pool


async def run_db(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run one unit of journey database work off the event loop.

    A small pool of threads, each with its own persistent connection: journey steps are short
    and mostly wait on PostgreSQL, so a single thread would make every journey on the worker
    queue behind every other one's round trips. `WORKER_DB_THREADS` bounds the connections.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(_with_fresh_connection, fn, kwargs))


def condition_to_cel(condition: Condition) -> str:
    """One property condition as a CEL expression over the pushed event's `properties`.

    Written by the condition itself (`Condition.to_cel`), beside its Python meaning, so a live
    wait on the engine and a trigger, exit or look-back in Python agree on every input.
    """
    return condition.to_cel("input.properties")


def wait_expression(*, contact_id: UUID, where: tuple[Condition, ...]) -> str:
    """Only this contact's events, and only those that satisfy `where`."""
    parts = [f"input.contact_id == {json.dumps(str(contact_id))}"]
    parts += [condition_to_cel(c) for c in where]
    return " && ".join(parts)


def parse_wait_result(result: dict[str, Any]) -> dict[str, Any] | None:
    """The event's payload if the user-event condition won the or-group, else None (timed out).

    The engine answers `{"CREATE": {<readable key>: [match, ...]}}`; the match of a user event
    carries the pushed payload.
    """
    groups = result.get("CREATE", result)
    matches = groups.get(EVENT_KEY) if isinstance(groups, dict) else None
    if not matches:
        return None
    match = matches[0] if isinstance(matches, list) else matches
    payload = match.get("data", match) if isinstance(match, dict) else {}
    if isinstance(payload, str):
        payload = json.loads(payload)
    return {
        "event_id": payload.get("event_id"),
        "properties": payload.get("properties") or {},
        "occurred_at": payload.get("occurred_at"),
    }


class HatchetBackend:
    """Backs one execution of a journey (or task) with a Hatchet durable context."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def now(self) -> datetime:
        return timezone.now()

    async def db(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        return await run_db(fn, **kwargs)

    async def sleep(
        self, *, run_id: UUID, seq: int, duration: timedelta, deadline: datetime, label: str
    ) -> None:
        # Always the written duration, never "what is left": the engine matches a replayed durable
        # call by position, and remembers when the original sleep began.
        await self.ctx.aio_sleep_for(duration, label=label)

    async def wait_for_event(
        self,
        *,
        run_id: UUID,
        seq: int,
        contact_id: UUID,
        event: str,
        where: tuple[Condition, ...],
        deadline: datetime,
        timeout: timedelta,
        label: str,
        replay: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        from hatchet_sdk import SleepCondition, UserEventCondition, or_

        from contacts.outbox import awaited_event_register, awaited_event_release

        # Tell the outbox relay this contact's `event`s are wanted (it pushes only what something
        # listens to), re-arming any that arrived since the wait began.
        await run_db(
            awaited_event_register,
            run_id=run_id,
            contact_id=contact_id,
            name=event,
            since=deadline - timeout,
            until=deadline,
        )
        result = await self.ctx.aio_wait_for(
            f"wait:{seq}",
            or_(
                UserEventCondition(
                    event_key=event,
                    expression=wait_expression(contact_id=contact_id, where=where),
                    readable_data_key=EVENT_KEY,
                    # An event pushed between the wait's start and its registration in the engine
                    # would be missed otherwise; the start is recorded, so replays ask the same.
                    # The engine looks back only among events of the wait's scope: every event is
                    # pushed with its contact's id as scope (`engine_push`).
                    consider_events_since=deadline - timeout,
                    scope=str(contact_id),
                ),
                SleepCondition(timeout, readable_data_key=TIMEOUT_KEY),
            ),
            label=label,
        )
        await run_db(awaited_event_release, run_id=run_id, name=event)
        return parse_wait_result(result)
