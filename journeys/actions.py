"""Operator actions on journeys and their runs. The Studio and the admin API call these, nothing else.

Each action is one transaction that makes the change and writes its audit entry together; the
engine hears about it only after commit, through the installed dispatcher when that one takes
engine commands (the virtual-time harness does), or through the Hatchet client otherwise. A
change the engine could not be told about is still made: the returned `Handoff` says so.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from django.db import transaction

from contacts.ingest import IngestResult, event_ingest
from contacts.models import Contact, Event
from contacts.services import audit_record
from journeys.dispatch import dispatcher
from journeys.models import JourneyRun, JourneySetting
from journeys.registry import registry
from journeys.services import journey_is_enabled, journey_set_enabled, run_exit, run_fail, run_retry

logger = logging.getLogger(__name__)
CANCEL_REASON = "cancelled_by_operator"


class ActionError(ValueError):
    """An operator asked for something the current state does not allow; the message says why."""


@dataclass
class Handoff:
    """What became of an engine command sent after commit: `done` once it ran, `problem` if it failed.

    Read it after the action returns: outside a surrounding transaction the command has run by then.
    """

    done: bool = False
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.done and not self.problem


@runtime_checkable
class EngineCommands(Protocol):
    def cancel_runs(self, *, run_ids: Sequence[UUID]) -> Handoff: ...

    def retry_run(self, *, run_id: UUID) -> Handoff: ...


class HatchetCommands:
    """Commands for the Hatchet engine, sent once the operator's transaction commits."""

    def cancel_runs(self, *, run_ids: Sequence[UUID]) -> Handoff:
        ids = list(run_ids)
        return _after_commit(lambda engine: engine.engine_cancel_runs(run_ids=ids))

    def retry_run(self, *, run_id: UUID) -> Handoff:
        # A retry the engine never received would leave the run active and idle forever:
        # put it back to failed, with the reason, so the operator can try again.
        def undo(problem: str) -> None:
            run_fail(run_id=run_id, error=f"retry not handed to the engine: {problem}")

        return _after_commit(lambda engine: engine.engine_retry_run(run_id=run_id), on_failure=undo)


def _after_commit(
    command: Callable[[Any], None], *, on_failure: Callable[[str], None] | None = None
) -> Handoff:
    handoff = Handoff()

    def send() -> None:
        try:
            command(importlib.import_module("journeys.runtime.engine"))
        except Exception as error:
            handoff.problem = f"the engine did not answer: {error}"
            logger.warning("engine command failed after commit: %s", error)
            if on_failure is not None:
                on_failure(handoff.problem)
        handoff.done = True

    transaction.on_commit(send)
    return handoff


def engine_commands() -> EngineCommands:
    """The installed dispatcher if it plays the engine (the harness), else the Hatchet client."""
    installed = dispatcher()
    return installed if isinstance(installed, EngineCommands) else HatchetCommands()


# --- runs ----------------------------------------------------------------------------------------


@dataclass
class RunsCancelled:
    cancelled: list[UUID] = field(default_factory=list)
    handoff: Handoff | None = None


def runs_exit_audited(
    *, actor: Any, run_ids: Iterable[UUID], reason: str, action: str
) -> tuple[list[UUID], Handoff | None]:
    """Mark live runs exited with `reason` and audit each as `action`, in one transaction; runs
    that already ended are left alone. The engine stops their executions after commit."""
    with transaction.atomic():
        exited = [run_id for run_id in run_ids if run_exit(run_id=run_id, reason=reason)]
        for run_id in exited:
            audit_record(
                actor=actor,
                action=action,
                target_type="journey_run",
                target_id=str(run_id),
                detail={"reason": reason},
            )
        handoff = engine_commands().cancel_runs(run_ids=exited) if exited else None
    return exited, handoff


def journey_run_cancel(*, actor: Any, run_ids: Iterable[UUID]) -> RunsCancelled:
    """Cancel live runs: each is exited as cancelled_by_operator and audited."""
    cancelled, handoff = runs_exit_audited(
        actor=actor, run_ids=run_ids, reason=CANCEL_REASON, action="run.cancel"
    )
    return RunsCancelled(cancelled=cancelled, handoff=handoff)


def journey_run_retry(*, actor: Any, run_id: UUID) -> Handoff:
    """Send a failed run back to active and have the engine replay it after commit; the step log
    makes the replay skip what the run already did. Raises ActionError for a run that did not fail."""
    with transaction.atomic():
        run = JourneyRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise ActionError(f"no journey run {run_id}")
        if run.status != JourneyRun.Status.FAILED or not run_retry(run_id=run.pk):
            raise ActionError(f"this run is {run.status}; only a failed run can be retried")
        audit_record(
            actor=actor,
            action="run.retry",
            target_type="journey_run",
            target_id=str(run.pk),
            detail={"error": run.error[:500]},
        )
        return engine_commands().retry_run(run_id=run.pk)


# --- journeys ------------------------------------------------------------------------------------


def journey_contact_enroll(
    *, actor: Any, journey_id: str, contact: Contact, properties: dict[str, Any] | None = None
) -> IngestResult:
    """Emit the journey's trigger event for a contact, through the ingest pipeline, so the
    enrollment guards decide as they would for a product event; audited in the same transaction."""
    journey = registry.get(journey_id)
    if journey is None:
        raise ActionError(f"no journey {journey_id!r}")
    if contact.erased_at is not None:
        raise ActionError("this contact was erased; it cannot enter a journey")
    properties = properties or {}
    with transaction.atomic():
        result = event_ingest(
            name=journey.trigger.event,
            user_id=contact.user_id,
            properties=properties,
            idempotency_key=f"operator-enroll:{uuid.uuid4()}",
            source=Event.Source.SYSTEM,
        )
        audit_record(
            actor=actor,
            action="contact.enroll",
            target_type="contact",
            target_id=str(contact.pk),
            detail={
                "journey_id": journey.id,
                "event": journey.trigger.event,
                "event_id": str(result.event.pk),
                "properties": properties,
            },
        )
    return result


def journey_enabled_set(*, actor: Any, journey_id: str, enabled: bool) -> JourneySetting:
    """Switch a journey on or off at runtime. Off: new triggers are skipped as journey_disabled;
    live runs continue."""
    journey = registry.get(journey_id)
    if journey is None:
        raise ActionError(f"no journey {journey_id!r}")
    with transaction.atomic():
        before = journey_is_enabled(journey=journey)
        setting = journey_set_enabled(journey_id=journey.id, enabled=enabled)
        audit_record(
            actor=actor,
            action="journey.enable" if enabled else "journey.disable",
            target_type="journey",
            target_id=journey.id,
            detail={"before": before, "after": enabled},
        )
    return setting
