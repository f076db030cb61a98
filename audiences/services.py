"""Segment writes: a full re-evaluation, the scheduled refreshes and the size snapshots."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from audiences.conditions import bind_now
from audiences.membership import contacts_lock, memberships_apply
from audiences.models import SegmentMembership, SegmentSize, SegmentState
from audiences.segments import Segment, registry, segment_get

logger = logging.getLogger(__name__)
REFRESH_CHUNK = 5000


@dataclass
class RefreshResult:
    segment_id: str
    size: int = 0
    entered: int = 0
    exited: int = 0
    candidates: int = 0
    announced: bool = True
    seconds: float = 0.0
    dependents: dict[str, int] = field(default_factory=dict)


def _candidates(segment: Segment, now: datetime) -> list:
    """Contacts whose membership looks wrong in one snapshot: qualifying non-members and
    non-qualifying members (each is re-checked under its lock before anything changes)."""
    sql = f"""
WITH q AS MATERIALIZED (
    SELECT c.id FROM contacts_contact c WHERE c.erased_at IS NULL AND ({segment.sql_text})
), m AS MATERIALIZED (
    SELECT contact_id FROM audiences_segmentmembership WHERE segment_id = %s
)
SELECT q.id FROM q WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.contact_id = q.id)
UNION ALL
SELECT m.contact_id FROM m WHERE NOT EXISTS (SELECT 1 FROM q WHERE q.id = m.contact_id)
"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*bind_now(list(segment.sql_params), now), segment.id])
        return [row[0] for row in cursor.fetchall()]


def segment_refresh(
    segment_id: str, *, now: datetime | None = None, chunk: int = REFRESH_CHUNK
) -> RefreshResult:
    """Re-evaluate one segment over every contact, set-based, and apply the difference.

    1. One statement finds the contacts whose membership looks wrong (no lock held).
    2. In chunks, each its own transaction: lock those contacts (user-id order, as ingest does),
       re-check them with a fresh snapshot and apply what really changed, emitting
       `segment.entered` / `segment.exited` (and re-checking segments that read this one). A
       concurrent ingest for a locked contact waits, then sees the result; one that came first
       is seen by the re-check. So a refresh never undoes a live change nor doubles an event.
    3. The segment's first population announces no one (its members did not just enter it).
    Raises `UnknownSegment`.
    """
    started = time.monotonic()
    segment = segment_get(segment_id)
    now = now or timezone.now()
    state = SegmentState.objects.filter(segment_id=segment.id).first()
    result = RefreshResult(segment_id=segment.id, announced=state is not None)
    candidates = _candidates(segment, now)
    result.candidates = len(candidates)
    for start in range(0, len(candidates), chunk):
        with transaction.atomic():
            locked = contacts_lock(candidates[start : start + chunk])
            if not locked:
                continue
            for change in memberships_apply(pairs={segment.id: locked}, now=now, announce=result.announced):
                if change.segment_id == segment.id:
                    if change.entered:
                        result.entered += 1
                    else:
                        result.exited += 1
                else:
                    result.dependents[change.segment_id] = result.dependents.get(change.segment_id, 0) + 1
    result.size = SegmentMembership.objects.filter(segment_id=segment.id).count()
    _state_save(segment, now=now, size=result.size, state=state)
    result.seconds = time.monotonic() - started
    return result


def _state_save(segment: Segment, *, now: datetime, size: int, state: SegmentState | None) -> None:
    SegmentState.objects.update_or_create(
        segment_id=segment.id,
        defaults={
            "populated_at": state.populated_at if state else now,
            "refreshed_at": now,
            "size": size,
            "definition": segment.sql_text,
        },
    )
    SegmentSize.objects.update_or_create(
        segment_id=segment.id,
        taken_at=now.replace(minute=0, second=0, microsecond=0),
        defaults={"size": size},
    )


def segments_refresh_due(*, now: datetime | None = None, full: bool = False) -> list[RefreshResult]:
    """The scheduled refresh: segments whose conditions depend on time (and any never populated),
    or every segment when `full` (the hourly reconcile catches changes no hook reported, such as
    an import); in dependency order. One failing segment does not stop the others."""
    now = now or timezone.now()
    populated = set(SegmentState.objects.values_list("segment_id", flat=True))
    results = []
    for segment in registry.in_dependency_order():
        if not (full or segment.time_based or segment.id not in populated):
            continue
        try:
            results.append(segment_refresh(segment.id, now=now))
        except Exception:
            logger.exception("segments: refresh of %s failed", segment.id)
    return results


def segment_sizes_snapshot(*, now: datetime | None = None) -> int:
    """Every defined segment's size at this hour (the chart's points); returns how many."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    sizes = dict(
        SegmentMembership.objects.values("segment_id").annotate(n=Count("id")).values_list("segment_id", "n")
    )
    rows = [SegmentSize(segment_id=s.id, taken_at=hour, size=sizes.get(s.id, 0)) for s in registry.all()]
    SegmentSize.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["segment_id", "taken_at"], update_fields=["size"]
    )
    return len(rows)


def segment_memberships_forget(*, contact_id, email: str) -> None:
    """Erasure: the contact leaves every segment, silently (nothing is announced for it)."""
    SegmentMembership.objects.filter(contact_id=contact_id).delete()
