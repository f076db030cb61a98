"""Executing a journey or custom task once the engine hands it an event.

The same code path serves the Hatchet worker and the virtual-time harness; only the backend
differs.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any
from uuid import UUID

from journeys import digests, services
from journeys.conditions import all_match
from journeys.context import (
    DurableBackend,
    JourneyContext,
    JourneyExit,
    JourneyUser,
    current_backend,
    current_context,
)
from journeys.definition import DurableTask, Journey
from journeys.models import EnrollmentSkip

Skip = EnrollmentSkip.Reason

logger = logging.getLogger(__name__)


async def journey_execute(
    *, journey: Journey, payload: dict[str, Any], engine_run_id: str, backend: DurableBackend
) -> dict[str, Any]:
    """Enroll (or resume, on replay) and run the journey function to its end.

    Returns `{"status": ..., ...}`: skipped with the guard's reason, or the run's final status.
    A digest journey's trigger that an open digest collected starts nothing (journeys/digests.py).
    """
    digest_opener = False
    if journey.digest is not None and payload.get("event_id"):
        role = await backend.db(
            digests.digest_trigger_role,
            journey=journey,
            contact_id=UUID(payload["contact_id"]),
            event_id=UUID(payload["event_id"]),
            properties=payload.get("properties") or {},
            now=backend.now(),
        )
        if role != digests.OPENER and all_match(journey.trigger.where, payload.get("properties") or {}):
            return {"status": "skipped", "reason": role}
        digest_opener = role == digests.OPENER
    enrollment = await backend.db(
        services.journey_enroll,
        journey=journey,
        contact_id=UUID(payload["contact_id"]),
        trigger_event_id=UUID(payload["event_id"]) if payload.get("event_id") else None,
        properties=payload.get("properties") or {},
        engine_run_id=engine_run_id,
        now=backend.now(),
    )
    if enrollment.run is None:
        if digest_opener and enrollment.skip_reason not in (Skip.ALREADY_ACTIVE, "duplicate_trigger"):
            # A guard said no: this digest will never have a run. (Already active: the live run
            # pushes its opener again when it ends.)
            await backend.db(
                digests.digest_discard_unstarted, journey_id=journey.id, opened_by=UUID(payload["event_id"])
            )
        return {"status": "skipped", "reason": enrollment.skip_reason}
    run = enrollment.run
    if not run.is_live:
        if journey.digest is not None and not enrollment.resumed:  # exited at enrollment
            await backend.db(digests.digest_run_ended, run_id=run.id)
        return {"status": run.status, "run_id": str(run.id)}
    if enrollment.resumed:  # a replay runs on the version the run started with, if the code kept it
        from journeys.registry import registry

        journey = registry.for_version(journey, run.version)

    user = JourneyUser(
        id=payload["user_id"],
        email=payload.get("user_email") or "",
        properties={**(payload.get("contact_properties") or {}), **(payload.get("properties") or {})},
        state_id=str(run.id),
        journey_id=journey.id,
        journey_name=journey.name,
        contact_id=payload["contact_id"],
    )
    ctx = JourneyContext(
        journey=journey,
        run_id=run.id,
        contact_id=run.contact_id,
        user=user,
        backend=backend,
        recorded=None if enrollment.resumed else {},  # a run just created has recorded nothing
        held_out=run.held_out,
        control_group=run.control_group,
    )
    token = current_context.set(ctx)
    try:
        await journey.run(user, ctx)
    except JourneyExit as stop:
        await ctx.db_ending(services.run_exit, run_id=run.id, reason=stop.reason)
        return {"status": "exited", "run_id": str(run.id), "reason": stop.reason}
    except services.RunNotLive as ended:
        # Exited (or cancelled) while the function was still going: nothing more may happen.
        return {"status": ended.status, "run_id": str(run.id)}
    except Exception as error:
        logger.exception("journey %s failed for run %s", journey.id, run.id)
        detail = f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=20)}"
        # The run's end is announced by the transition itself (services.run_end_announce).
        await ctx.db_ending(services.run_fail, run_id=run.id, error=detail)
        return {"status": "failed", "run_id": str(run.id), "error": str(error)}
    finally:
        current_context.reset(token)
    try:
        # The last step's record, if it waits for the run's next unit of work (a send's), goes
        # with the completion; a run that ended meanwhile refuses it.
        await ctx.complete()
    except services.RunNotLive as ended:
        return {"status": ended.status, "run_id": str(run.id)}
    return {"status": "completed", "run_id": str(run.id)}


async def task_execute(*, task: DurableTask, payload: dict[str, Any], backend: DurableBackend) -> Any:
    """Run a custom task for an event once: its effect is recorded on the event, so a re-push (the
    reconciler's, journeys/reconcile.py) skips an event the task already handled."""
    from contacts.outbox import event_task_done, event_task_is_done

    event_id = UUID(payload["event_id"]) if payload.get("event_id") else None
    if event_id and await backend.db(event_task_is_done, event_id=event_id, task=task.name):
        return {"status": "already_done"}
    token = current_backend.set(backend)
    try:
        result = await task.fn(payload)
    finally:
        current_backend.reset(token)
    if event_id:
        await backend.db(event_task_done, event_id=event_id, task=task.name)
    return result
