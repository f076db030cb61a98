"""A broadcast's segment audience: the members of a segment, as SQL to select from."""

from __future__ import annotations

from typing import Any


class UnknownSegment(LookupError):
    pass


def segment_check(segment_id: str) -> None:
    """Raise UnknownSegment naming the segment if no such segment is defined."""
    raise UnknownSegment(f"unknown segment {segment_id!r}; no segments are defined")


def segment_members_sql(segment_id: str) -> tuple[str, list[Any]]:
    """SELECT of the member contact ids of a segment."""
    segment_check(segment_id)
    raise AssertionError("unreachable")
