"""Admin API for journeys and runs (`/v1/admin/...`, admin scope): the Studio's actions over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, Field

from contacts.actions import api_key_actor
from contacts.auth import admin_auth
from contacts.pagination import CURSOR_DESCRIPTION, BadCursor, Cursor
from contacts.schemas import Identifier, Properties
from contacts.selectors import contact_get
from journeys import actions
from journeys.models import JourneyRun
from journeys.readouts import journey_readout
from journeys.registry import registry
from journeys.run_selectors import run_with_steps, runs_page
from journeys.services import journey_is_enabled

router = Router(auth=admin_auth, tags=["admin: journeys & runs"])
RunStatus = Literal["active", "waiting", "completed", "failed", "exited"]


class EngineOut(Schema):
    done: bool = Field(description="The engine command ran (after the change committed)")
    problem: str = Field(description="Why the engine could not be told; empty when it was")


class RunOut(Schema):
    id: UUID
    journeyId: str
    contactId: UUID
    userId: str
    status: RunStatus
    currentNode: str
    waitingUntil: datetime | None
    enteredAt: datetime
    endedAt: datetime | None
    exitReason: str
    error: str
    engineRunId: str | None
    version: str = Field(description="The journey's version the run enrolled under")
    heldOut: bool = Field(description="In the journey's holdout: the run goes on, nothing is sent")


class RunPageOut(Schema):
    items: list[RunOut]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class StepOut(Schema):
    seq: int
    kind: str
    label: str
    result: dict[str, Any]
    recordedAt: datetime


class RunDetailOut(RunOut):
    steps: list[StepOut]


class RunActionOut(Schema):
    run: RunOut
    engine: EngineOut | None = None


class JourneyOut(Schema):
    id: str
    name: str
    trigger: str
    enabled: bool


class GroupOut(Schema):
    name: str
    entrants: int
    conversions: int
    rate: float | None = Field(description="conversions / entrants; null without entrants")


class ComparisonOut(Schema):
    group: str
    against: str
    difference: float | None = Field(description="group's rate minus against's")
    ciLow: float | None = Field(description="95 % confidence interval of the difference (Wald)")
    ciHigh: float | None
    pValue: float | None = Field(description="two-sided, pooled two-proportion z-test")
    conclusive: bool = Field(description="false while the sample is too small to say (see warning)")
    warning: str


class ExperimentOut(Schema):
    key: str
    arms: list[GroupOut]
    comparisons: list[ComparisonOut]


class VersionOut(Schema):
    version: str
    since: datetime
    runs: int


class GoalOut(Schema):
    event: str
    within: str


class ReadoutOut(Schema):
    journeyId: str
    version: str | None
    versions: list[VersionOut]
    goal: GoalOut | None
    holdoutShare: float
    everyone: GroupOut
    treated: GroupOut
    holdout: GroupOut | None
    controlGroup: GroupOut | None = Field(
        description="Runs enrolled in the global control group (HOGSEND_CONTROL_GROUP_PERCENT): sent "
        "no marketing mail, so counted apart from the treated and every arm; null when there are none"
    )
    againstHoldout: ComparisonOut | None
    experiments: list[ExperimentOut]
    warnings: list[str]
    minConversions: int


class EnrollIn(Schema):
    model_config = ConfigDict(extra="forbid")

    contact: Identifier = Field(min_length=1, description="Our contact id or your product's user id")
    properties: Properties = Field(default_factory=dict, description="The trigger event's properties")


class EnrollOut(Schema):
    journeyId: str
    contactId: UUID
    eventId: UUID
    event: str


def run_out(run: JourneyRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "journeyId": run.journey_id,
        "contactId": run.contact_id,
        "userId": run.contact.user_id,
        "status": run.status,
        "currentNode": run.current_node,
        "waitingUntil": run.waiting_until,
        "enteredAt": run.entered_at,
        "endedAt": run.ended_at,
        "exitReason": run.exit_reason,
        "error": run.error,
        "engineRunId": run.engine_run_id,
        "version": run.version,
        "heldOut": run.held_out,
    }


def _engine(handoff: actions.Handoff | None) -> dict[str, Any] | None:
    return None if handoff is None else {"done": handoff.done, "problem": handoff.problem}


def _run_or_404(run_id: UUID) -> JourneyRun:
    run = JourneyRun.objects.select_related("contact").filter(pk=run_id).first()
    if run is None:
        raise HttpError(404, f"no journey run {run_id}")
    return run


@router.get("/runs", response=RunPageOut)
def runs_list(
    request: HttpRequest,
    journey: str | None = Query(None, description="Journey id"),
    contact: str | None = Query(None, description="Our contact id or your user id"),
    status: RunStatus | None = None,
    node: str | None = Query(None, description="Current node (a checkpoint, sleep or wait label)"),
    version: str | None = Query(
        None, pattern=r"^[0-9a-f]{12}$", description="The journey version (12 hex digits)"
    ),
    cursor: Cursor | None = Query(None, description=CURSOR_DESCRIPTION),
    limit: int = Query(50, ge=1, le=500),
):
    """Journey runs, newest first, filtered by journey, contact, status, current node and version."""
    contact_id = None
    if contact:
        found = contact_get(key=contact)
        if found is None:
            return {"items": [], "nextCursor": None}
        contact_id = found.pk
    try:
        page = runs_page(
            journey_id=journey,
            contact_id=contact_id,
            status=status,
            current_node=node,
            version=version,
            cursor=cursor,
            limit=limit,
        )
    except BadCursor as error:
        raise HttpError(422, str(error)) from None
    return {"items": [run_out(run) for run in page.runs], "nextCursor": page.next_cursor}


@router.get("/runs/{run_id}", response=RunDetailOut)
def run_detail(request: HttpRequest, run_id: UUID):
    """One run with its step log: every sleep, wait, send and trigger, in order."""
    found = run_with_steps(run_id=run_id)
    if found is None:
        raise HttpError(404, f"no journey run {run_id}")
    run, steps = found
    return {
        **run_out(run),
        "steps": [
            {"seq": s.seq, "kind": s.kind, "label": s.label, "result": s.result, "recordedAt": s.recorded_at}
            for s in steps
        ],
    }


@router.post("/runs/{run_id}/cancel", response=RunActionOut)
def run_cancel(request: HttpRequest, run_id: UUID):
    """Cancel a live run: it is marked exited (`cancelled_by_operator`) and stopped in the engine.
    409 for a run that already ended."""
    run = _run_or_404(run_id)
    outcome = actions.journey_run_cancel(actor=api_key_actor(request.auth), run_ids=[run.pk])
    if not outcome.cancelled:
        raise HttpError(409, f"this run is {run.status}; only a live run can be cancelled")
    return {"run": run_out(_run_or_404(run_id)), "engine": _engine(outcome.handoff)}


@router.post("/runs/{run_id}/retry", response={202: RunActionOut})
def run_retry(request: HttpRequest, run_id: UUID):
    """Retry a failed run: it goes back to active and the engine replays it (recorded steps are not
    done twice). 409 for a run that did not fail."""
    _run_or_404(run_id)
    try:
        handoff = actions.journey_run_retry(actor=api_key_actor(request.auth), run_id=run_id)
    except actions.ActionError as error:
        raise HttpError(409, str(error)) from None
    return 202, {"run": run_out(_run_or_404(run_id)), "engine": _engine(handoff)}


def _journey_out(journey_id: str) -> dict[str, Any]:
    journey = registry.get(journey_id)
    if journey is None:
        raise HttpError(404, f"no journey {journey_id!r}")
    return {
        "id": journey.id,
        "name": journey.name,
        "trigger": journey.trigger.event,
        "enabled": journey_is_enabled(journey=journey),
    }


@router.get("/journeys", response=list[JourneyOut])
def journeys_list(request: HttpRequest):
    """Every registered journey and whether it is enabled right now."""
    return [_journey_out(journey.id) for journey in registry.all()]


@router.get("/journeys/{journey_id}/readout", response=ReadoutOut)
def journey_readout_get(
    request: HttpRequest,
    journey_id: str,
    version: str | None = Query(
        None,
        pattern=r"^[0-9a-f]{12}$",
        description="Only runs that enrolled under this version (12 hex digits)",
    ),
):
    """The journey's experiment readout: entrants, conversions and rate per arm of each
    `ctx.variant` key and for the holdout; each arm against the holdout and the first arm, with the
    difference, its 95 % confidence interval and a p-value, `conclusive: false` and a warning while
    the sample is too small to say."""
    journey = registry.get(journey_id)
    if journey is None:
        raise HttpError(404, f"no journey {journey_id!r}")
    return journey_readout(journey=journey, version=version).as_dict()


@router.post("/journeys/{journey_id}/enable", response=JourneyOut)
def journey_enable(request: HttpRequest, journey_id: str):
    """Switch a journey on: new triggers enroll again."""
    _journey_out(journey_id)
    actions.journey_enabled_set(actor=api_key_actor(request.auth), journey_id=journey_id, enabled=True)
    return _journey_out(journey_id)


@router.post("/journeys/{journey_id}/disable", response=JourneyOut)
def journey_disable(request: HttpRequest, journey_id: str):
    """Switch a journey off: new triggers are skipped as `journey_disabled`; live runs continue."""
    _journey_out(journey_id)
    actions.journey_enabled_set(actor=api_key_actor(request.auth), journey_id=journey_id, enabled=False)
    return _journey_out(journey_id)


@router.post("/journeys/{journey_id}/enroll", response={202: EnrollOut})
def journey_enroll(request: HttpRequest, journey_id: str, payload: EnrollIn):
    """Enroll a contact: emit the journey's trigger event for it. The enrollment guards still decide
    (a disabled journey, an entry limit or an unsubscribe skips it, with the reason recorded)."""
    journey = _journey_out(journey_id)
    contact = contact_get(key=payload.contact)
    if contact is None:
        raise HttpError(404, f"no contact with id or userId {payload.contact!r}")
    try:
        result = actions.journey_contact_enroll(
            actor=api_key_actor(request.auth),
            journey_id=journey_id,
            contact=contact,
            properties=payload.properties,
        )
    except actions.ActionError as error:
        raise HttpError(409, str(error)) from None
    return 202, {
        "journeyId": journey_id,
        "contactId": contact.pk,
        "eventId": result.event.pk,
        "event": journey["trigger"],
    }
