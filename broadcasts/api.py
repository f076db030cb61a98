"""Admin API for broadcasts (`/v1/admin/broadcasts`, admin scope): create, list, read, pause,
resume, cancel. Each action calls its service; an unknown template, segment, journey or a bad
filter is a 422 naming the field."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, Field, field_validator

from broadcasts import services
from broadcasts.local_time import LOCAL_TIME_PATTERN
from broadcasts.models import Broadcast
from broadcasts.segments import registry as segments
from broadcasts.selectors import broadcast_progress, broadcast_report
from contacts.actions import api_key_actor
from contacts.auth import admin_auth
from contacts.categories import all_categories, category_resends_if_uncertain
from contacts.schemas import NO_NUL_PATTERN, CleanText, Identifier, Properties, ScheduleTime, json_problem
from emails.registry import CONFIRMATION_TEMPLATE, all_templates
from emails.schemas import template_props_rules
from journeys.conditions import OPERATORS, ORDERINGS
from journeys.registry import registry as journeys

router = Router(auth=admin_auth, tags=["admin: broadcasts"])
BroadcastStatus = Literal["scheduled", "running", "paused", "completed", "cancelled"]


class ConditionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    property: Identifier = Field(min_length=1, max_length=200)
    operator: str = Field(description="eq neq gt gte lt lte exists not_exists contains")
    value: Any = None

    @field_validator("value")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # The filter is stored as jsonb, which refuses NUL and lone surrogates: say so as a 422.
        problem = json_problem(value, "value")
        if problem:
            raise ValueError(problem)
        return value


class BroadcastIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: CleanText = Field(min_length=1, max_length=200)
    template: Identifier | None = Field(default=None, max_length=200, description="An email template key")
    journey: Identifier | None = Field(
        default=None, max_length=200, description="Or: a journey to enroll into"
    )
    props: Properties = Field(
        default_factory=dict, description="The template's props (the same for everyone)"
    )
    category: Identifier | None = Field(default=None, max_length=64, description="Default: the template's")
    segment: Identifier | None = Field(default=None, max_length=200, description="A segment id")
    filter: list[ConditionIn] | None = Field(
        default=None, description="Or: conditions over contact properties"
    )
    sendAt: ScheduleTime = Field(default=None, description="When to start; now if absent")
    # Not nullable (a default of None is "absent"): the schema then says exactly what is accepted.
    localTime: str = Field(
        default=None,
        pattern=LOCAL_TIME_PATTERN,
        description="Send at this wall-clock time (HH:MM, 24 h) in each recipient's own time zone, on "
        "localDate (default: the next day it is still ahead everywhere); a zone already past it when the "
        "broadcast starts is sent at once",
    )
    localDate: date = Field(
        default=None,
        description="The day of localTime (YYYY-MM-DD; alone: 00:00 that day in each zone). The broadcast "
        "starts (its audience is read) at sendAt if given, else when that time first comes anywhere",
    )
    rate: float = Field(default=50.0, description="Sends per second across all workers; 0 is unthrottled")
    priority: int = Field(
        default=0,
        ge=-services.MAX_PRIORITY,
        le=services.MAX_PRIORITY,
        description="Under a frequency cap, a higher priority takes a contested slot",
    )
    onCap: Literal["skip", "defer"] = Field(
        default="skip", description="A send a frequency cap stops: skipped, or deferred to the next free slot"
    )


class ProgressOut(Schema):
    total: int
    sent: int
    enrolled: int
    held: int
    skipped: dict[str, int]
    remaining: int
    scheduled: int = Field(description="Of the remaining: not due yet (their local time has not come)")
    rate: float
    secondsLeft: float | None


class ReportOut(Schema):
    delivered: int
    bounced: int
    complained: int
    opened: int
    clicked: int
    unsubscribed: int


class BroadcastOut(Schema):
    id: UUID
    name: str
    status: BroadcastStatus
    template: str
    journey: str
    category: str
    segment: str
    filter: list[dict[str, Any]]
    sendAt: datetime | None
    localTime: str | None
    localDate: date | None
    rate: float
    priority: int
    onCap: str
    createdAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None
    progress: ProgressOut
    report: ReportOut | None = Field(description="Once it started: what became of its emails")


def broadcast_out(broadcast: Broadcast) -> dict[str, Any]:
    started = broadcast.started_at is not None
    return {
        "id": broadcast.pk,
        "name": broadcast.name,
        "status": broadcast.status,
        "template": broadcast.template,
        "journey": broadcast.journey_id,
        "category": broadcast.category,
        "segment": broadcast.segment_id,
        "filter": broadcast.filter,
        "sendAt": broadcast.send_at,
        "localTime": broadcast.local_time.strftime("%H:%M") if broadcast.local_time else None,
        "localDate": broadcast.local_date,
        "rate": broadcast.rate,
        "priority": broadcast.priority,
        "onCap": broadcast.on_cap,
        "createdAt": broadcast.created_at,
        "startedAt": broadcast.started_at,
        "finishedAt": broadcast.finished_at,
        "progress": broadcast_progress(broadcast=broadcast).as_data(),
        "report": broadcast_report(broadcast_id=broadcast.pk).as_data() if started else None,
    }


def _get(broadcast_id: UUID) -> Broadcast:
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None:
        raise HttpError(404, f"no broadcast {broadcast_id}")
    return broadcast


@router.post("/broadcasts", response={201: BroadcastOut})
def broadcast_create_view(request: HttpRequest, payload: BroadcastIn):
    """Create a broadcast; without `sendAt` it starts sending at once."""
    try:
        broadcast = services.broadcast_create(
            name=payload.name,
            template=payload.template or "",
            journey_id=payload.journey or "",
            props=payload.props,
            category=payload.category or "",
            segment_id=payload.segment or "",
            conditions=[c.model_dump(exclude_unset=True) for c in payload.filter or []],
            send_at=payload.sendAt,
            local_time=payload.localTime,
            local_date=payload.localDate,
            rate=payload.rate,
            priority=payload.priority,
            on_cap=payload.onCap,
            actor=api_key_actor(request.auth),
        )
    except services.BroadcastError as error:
        raise HttpError(422, f"{error.field}: {error}") from None
    return 201, broadcast_out(broadcast)


@router.get("/broadcasts", response=list[BroadcastOut])
def broadcasts_list(
    request: HttpRequest,
    status: BroadcastStatus | None = None,
    limit: int = Query(50, ge=1, le=200),
):
    """Broadcasts, newest first."""
    broadcasts = Broadcast.objects.all()
    if status:
        broadcasts = broadcasts.filter(status=status)
    return [broadcast_out(b) for b in broadcasts[:limit]]


@router.get("/broadcasts/{broadcast_id}", response=BroadcastOut)
def broadcast_read(request: HttpRequest, broadcast_id: UUID):
    """One broadcast with its progress and report."""
    return broadcast_out(_get(broadcast_id))


def _act(request: HttpRequest, broadcast_id: UUID, action) -> dict[str, Any]:
    _get(broadcast_id)
    try:
        broadcast = action(broadcast_id=broadcast_id, actor=api_key_actor(request.auth))
    except services.BroadcastError as error:
        raise HttpError(409, str(error)) from None
    return broadcast_out(broadcast)


@router.post("/broadcasts/{broadcast_id}/pause", response=BroadcastOut)
def broadcast_pause_view(request: HttpRequest, broadcast_id: UUID):
    """Stop after the batch in hand; resume goes on where it stopped."""
    return _act(request, broadcast_id, services.broadcast_pause)


@router.post("/broadcasts/{broadcast_id}/resume", response=BroadcastOut)
def broadcast_resume_view(request: HttpRequest, broadcast_id: UUID):
    return _act(request, broadcast_id, services.broadcast_resume)


@router.post("/broadcasts/{broadcast_id}/cancel", response=BroadcastOut)
def broadcast_cancel_view(request: HttpRequest, broadcast_id: UUID):
    """Nothing more is sent: emails not yet handed to the provider are suppressed."""
    return _act(request, broadcast_id, services.broadcast_cancel)


def _one_of_names(names: list[str]) -> dict[str, Any]:
    # An empty enum is not valid JSON Schema; `not: {}` says "nothing is accepted" instead.
    return {"type": "string", "enum": names} if names else {"not": {}}


def broadcast_in_schema_complete(component: dict[str, Any], condition: dict[str, Any]) -> None:
    """Say in the OpenAPI document what `broadcast_validate` checks against the registries: a
    registered template or journey (exactly one), a registered segment or a filter (not both), a
    category a broadcast may use, the template's required props, a rate in range, and conditions
    the condition language accepts. A client generating requests from the schema then only
    builds broadcasts the server takes. (localTime's pattern, localDate's format, priority's and
    onCap's ranges come from the model itself; localTime, localDate and sendAt combine freely.)"""
    templates = [t for t in all_templates() if t.key != CONFIRMATION_TEMPLATE]
    categories = [
        c.id for c in all_categories() if c.id != "confirmation" and not category_resends_if_uncertain(c.id)
    ]
    properties = component["properties"]
    properties["template"] = {
        **_one_of_names([t.key for t in templates]),
        "description": "An email template key",
    }
    properties["journey"] = {
        **_one_of_names(sorted(j.id for j in journeys.all())),
        "description": "Or: a journey to enroll into",
    }
    properties["segment"] = {
        **_one_of_names(sorted(s.id for s in segments.all())),
        "description": "A segment id",
    }
    properties["category"] = {**_one_of_names(sorted(categories)), "description": "Default: the template's"}
    properties["rate"].update({"minimum": 0, "maximum": services.MAX_RATE})
    component["oneOf"] = [
        {"required": ["template"], "not": {"required": ["journey"]}},
        {"required": ["journey"], "not": {"required": ["template"]}},
    ]
    component["not"] = {"required": ["segment", "filter"]}
    component["allOf"] = template_props_rules(templates)
    scalar = {
        "anyOf": [
            {"type": "string", "pattern": NO_NUL_PATTERN},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
        ]
    }
    condition["properties"]["operator"] = {"type": "string", "enum": list(OPERATORS)}
    condition["properties"]["value"] = scalar
    condition["allOf"] = [
        {
            "if": {"properties": {"operator": {"enum": list(ORDERINGS)}}, "required": ["operator"]},
            "then": {"required": ["value"], "properties": {"value": {"type": ["string", "number"]}}},
        }
    ]
