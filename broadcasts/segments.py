"""A broadcast's segment audience: the members of a segment (audiences), as SQL to select from."""

from __future__ import annotations

from typing import Any

from audiences.segments import UnknownSegment, registry, segment_get
from audiences.selectors import segment_members_sql as _members_sql

__all__ = ["UnknownSegment", "segment_check", "segment_members_sql"]


def segment_check(segment_id: str) -> None:
    """Raise UnknownSegment, with the segments that are defined, if no segment has this id."""
    try:
        segment_get(segment_id)
    except UnknownSegment:
        known = ", ".join(sorted(s.id for s in registry.all())) or "none"
        raise _unknown(segment_id, known) from None


def _unknown(segment_id: str, known: str) -> UnknownSegment:
    error = UnknownSegment(segment_id)
    error.args = (f"unknown segment {segment_id!r}; defined: {known}",)
    return error


def segment_members_sql(segment_id: str) -> tuple[str, list[Any]]:
    """SELECT of the member contact ids of a segment (raises UnknownSegment)."""
    return _members_sql(segment_id)
