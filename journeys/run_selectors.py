"""Reads of journey runs for operators (the admin API): filtered lists in pages, one run with its steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet

from contacts.pagination import cursor_decode, cursor_encode
from journeys.models import JourneyRun, RunStep


@dataclass
class RunPage:
    runs: list[JourneyRun]
    next_cursor: str | None


def runs_page(
    *,
    journey_id: str | None = None,
    contact_id: UUID | None = None,
    status: str | None = None,
    current_node: str | None = None,
    version: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> RunPage:
    """Runs newest first, filtered; a keyset page (no OFFSET, no COUNT), so page 1,000 of a huge
    table costs what page 1 does. Each filter combination has an index that starts with it."""
    runs: QuerySet[JourneyRun] = JourneyRun.objects.select_related("contact")
    if journey_id:
        runs = runs.filter(journey_id=journey_id)
    if contact_id:
        runs = runs.filter(contact_id=contact_id)
    if status:
        runs = runs.filter(status=status)
    if current_node is not None:
        runs = runs.filter(current_node=current_node)
    if version:
        runs = runs.filter(version=version)
    if cursor:
        entered_at, pk = cursor_decode(cursor)
        runs = runs.filter(Q(entered_at__lt=entered_at) | Q(entered_at=entered_at, pk__lt=pk))
    found = list(runs.order_by("-entered_at", "-pk")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return RunPage(
        runs=found,
        next_cursor=cursor_encode(at=found[-1].entered_at, pk=found[-1].pk) if more and found else None,
    )


def run_with_steps(*, run_id: UUID) -> tuple[JourneyRun, list[RunStep]] | None:
    run = JourneyRun.objects.select_related("contact").filter(pk=run_id).first()
    if run is None:
        return None
    return run, list(RunStep.objects.filter(run=run).order_by("seq"))


def contact_runs_timeline(*, contact: Any, limit: int) -> list[dict[str, Any]]:
    """A contact's runs for its timeline (installed into `contacts.selectors` at start-up)."""
    return [
        {
            "type": "journey_run",
            "at": r.entered_at,
            "id": r.id,
            "name": r.journey_id,
            "status": r.status,
            "detail": {
                "currentNode": r.current_node,
                "endedAt": r.ended_at.isoformat() if r.ended_at else None,
                "waitingUntil": r.waiting_until.isoformat() if r.waiting_until else None,
                "exitReason": r.exit_reason,
                "error": r.error.splitlines()[0] if r.error else "",
            },
        }
        for r in JourneyRun.objects.filter(contact=contact).order_by("-entered_at")[:limit]
    ]
