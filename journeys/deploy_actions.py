"""The ways out a deploy check offers for runs that would break, as operator actions.

- `deploy_runs_end`: end the runs with a reason the operator gives: each is recorded as exited
  with it and audited in one transaction; the engine cancels their executions after commit.
- `deploy_label_map`: the code renamed a wait, sleep or checkpoint in place: live runs parked at
  (or last checkpointed) the old label take the new one, in their current node, their node on the
  journey map and their step log, so the check, the Studio and the code agree (the map's counts
  of runs that passed the old node stay as history). A label that moved to another position
  cannot be mapped (the engine's own log is positional): end those runs, or keep the old version.
- Letting runs finish on the version they started with is not an action: the old function stays
  in the code as a kept version (see `journeys.versions`), and the worker runs each run on the
  version it recorded at enrollment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import transaction

from contacts.services import audit_record
from journeys.actions import ActionError, Handoff, runs_exit_audited
from journeys.journey_map import node_key
from journeys.models import JourneyRun, RunStep

_PARKING = (RunStep.Kind.SLEEP, RunStep.Kind.WAIT, RunStep.Kind.CHECKPOINT)


@dataclass
class RunsEnded:
    ended: list[UUID] = field(default_factory=list)
    handoff: Handoff | None = None


def deploy_runs_end(*, actor: Any, run_ids: Iterable[UUID], reason: str) -> RunsEnded:
    """Exit live runs with `reason` (audited); the engine cancels them after commit. Runs that
    ended meanwhile are left alone."""
    reason = reason.strip()
    if not reason:
        raise ActionError("give a reason to end the runs with (it is recorded as their exit reason)")
    ended, handoff = runs_exit_audited(
        actor=actor, run_ids=run_ids, reason=reason, action="run.end_for_deploy"
    )
    return RunsEnded(ended=ended, handoff=handoff)


def deploy_label_map(*, actor: Any, journey_id: str, old: str, new: str) -> int:
    """Give live runs of `journey_id` at label `old` the label `new`; returns how many moved."""
    if not old or not new or old == new:
        raise ActionError("map an old label to a different, non-empty new one")
    new = new[:200]
    with transaction.atomic():
        runs = list(
            JourneyRun.objects.select_for_update()
            .filter(journey_id=journey_id, status__in=JourneyRun.LIVE_STATUSES, current_node=old)
            .values_list("pk", flat=True)
        )
        if not runs:
            return 0
        JourneyRun.objects.filter(pk__in=runs).update(current_node=new)
        RunStep.objects.filter(run_id__in=runs, kind__in=_PARKING, label=old).update(label=new)
        for kind in _PARKING:  # where the journey map shows them, too
            JourneyRun.objects.filter(pk__in=runs, map_node=node_key(kind, old)).update(
                map_node=node_key(kind, new)
            )
        audit_record(
            actor=actor,
            action="journey.label_map",
            target_type="journey",
            target_id=journey_id,
            detail={"from": old, "to": new, "runs": len(runs)},
        )
    return len(runs)
