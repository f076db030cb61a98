"""A segment's members as CSV or JSON lines, streamed from a server-side cursor."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from audiences.models import SegmentMembership
from audiences.segments import segment_get
from contacts.exports import lines_batched

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
COLUMNS = ["user_id", "email", "entered_at", "properties"]


def segment_members_records(segment_id: str, *, chunk_size: int = 2_000) -> Iterator[dict[str, Any]]:
    segment = segment_get(segment_id)
    rows = (
        SegmentMembership.objects.filter(segment_id=segment.id)
        .order_by("entered_at", "contact_id")
        .values_list("contact__user_id", "contact__email", "entered_at", "contact__properties")
        .iterator(chunk_size=chunk_size)
    )
    for user_id, email, entered_at, properties in rows:
        yield {
            "user_id": user_id,
            "email": email,
            "entered_at": entered_at.isoformat(),
            "properties": properties,
        }


def segment_members_export(segment_id: str, *, fmt: str) -> Iterator[str]:
    """Raises `UnknownSegment` before the first byte, so an unknown id is a 404, not a broken stream."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be csv or jsonl, not {fmt!r}")
    segment_get(segment_id)
    records = segment_members_records(segment_id)
    if fmt == "jsonl":
        return lines_batched(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in records)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for values in (
            [COLUMNS],
            ([r[c] if c != "properties" else json.dumps(r[c]) for c in COLUMNS] for r in records),
        ):
            for row in values:
                buffer.seek(0)
                buffer.truncate()
                writer.writerow(row)
                yield buffer.getvalue()

    return lines_batched(lines())
