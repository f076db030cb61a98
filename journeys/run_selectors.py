"""Reads of journey runs for operators (the admin API): filtered lists in pages, one run with its steps."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Q, QuerySet

from journeys.models import JourneyRun, RunStep


class BadCursor(ValueError):
    """A page cursor this API did not hand out."""


@dataclass
class RunPage:
    runs: list[JourneyRun]
    next_cursor: str | None


def _cursor_encode(run: JourneyRun) -> str:
    return base64.urlsafe_b64encode(f"{run.entered_at.isoformat()}|{run.pk}".encode()).decode()


def _cursor_decode(cursor: str) -> tuple[datetime, UUID]:
    try:
        entered, _, pk = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(entered), UUID(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("cursor is not one this API handed out; start again without it") from None


def runs_page(
    *,
    journey_id: str | None = None,
    contact_id: UUID | None = None,
    status: str | None = None,
    current_node: str | None = None,
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
    if cursor:
        entered_at, pk = _cursor_decode(cursor)
        runs = runs.filter(Q(entered_at__lt=entered_at) | Q(entered_at=entered_at, pk__lt=pk))
    found = list(runs.order_by("-entered_at", "-pk")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return RunPage(runs=found, next_cursor=_cursor_encode(found[-1]) if more and found else None)


def run_with_steps(*, run_id: UUID) -> tuple[JourneyRun, list[RunStep]] | None:
    run = JourneyRun.objects.select_related("contact").filter(pk=run_id).first()
    if run is None:
        return None
    return run, list(RunStep.objects.filter(run=run).order_by("seq"))
