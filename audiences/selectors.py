"""Segment reads: members, sizes, a contact's segments, the size history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from audiences.models import SegmentMembership, SegmentSize
from audiences.segments import Segment, registry, segment_get
from contacts.models import Contact


def segment_contacts(segment_id: str) -> QuerySet[Contact]:
    """The segment's members as contacts (a lazy queryset); raises `UnknownSegment`."""
    segment = segment_get(segment_id)
    return Contact.objects.filter(
        Exists(SegmentMembership.objects.filter(segment_id=segment.id, contact_id=OuterRef("pk")))
    )


def segment_size(segment_id: str) -> int:
    segment = segment_get(segment_id)
    return SegmentMembership.objects.filter(segment_id=segment.id).count()


def segment_sizes() -> dict[str, int]:
    """Every defined segment's size, in one query."""
    counted = dict(
        SegmentMembership.objects.values("segment_id").annotate(n=Count("id")).values_list("segment_id", "n")
    )
    return {s.id: counted.get(s.id, 0) for s in registry.all()}


@dataclass
class MembersPage:
    members: list[tuple[Contact, datetime]]
    next_cursor: tuple[datetime, UUID] | None


def segment_members_page(
    segment_id: str, *, limit: int = 100, before: tuple[datetime, UUID] | None = None
) -> MembersPage:
    """Members newest first (by when they entered), a keyset page after `before`."""
    segment = segment_get(segment_id)
    rows = SegmentMembership.objects.filter(segment_id=segment.id).select_related("contact")
    if before is not None:
        at, contact_id = before
        rows = rows.filter(Q(entered_at__lt=at) | Q(entered_at=at, contact_id__lt=contact_id))
    found = list(rows.order_by("-entered_at", "-contact_id")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return MembersPage(
        members=[(m.contact, m.entered_at) for m in found],
        next_cursor=(found[-1].entered_at, found[-1].contact_id) if more and found else None,
    )


def contact_segments(*, contact_id: UUID) -> list[dict[str, Any]]:
    """The segments a contact is in, with when it entered each (defined segments only)."""
    rows = SegmentMembership.objects.filter(contact_id=contact_id).order_by("-entered_at")
    out = []
    for row in rows:
        segment = registry.get(row.segment_id)
        if segment is not None:
            out.append({"segment": segment, "entered_at": row.entered_at})
    return out


def segment_size_history(
    segment: Segment, *, days: int = 30, now: datetime | None = None
) -> list[SegmentSize]:
    since = (now or timezone.now()) - timedelta(days=days)
    return list(SegmentSize.objects.filter(segment_id=segment.id, taken_at__gte=since).order_by("taken_at"))


def segment_members_sql(segment_id: str) -> tuple[str, list[Any]]:
    """A SELECT of the member contact ids, for set-based readers (a broadcast's audience);
    raises `UnknownSegment`."""
    segment = segment_get(segment_id)
    return "SELECT contact_id FROM audiences_segmentmembership WHERE segment_id = %s", [segment.id]
