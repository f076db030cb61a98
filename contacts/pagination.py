"""Keyset page cursors of the admin API: `<microseconds since 1970-01-01 UTC>_<uuid>`.

A cursor is a position in a list ordered by a time and then an id, newest first: the next page
holds the rows before it. Any position that matches the pattern is valid (one past the newest
row gives the first page, one before the oldest an empty one), so the OpenAPI document can state
exactly which cursors the server takes, and a client can never hold a well-formed one it refuses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from pydantic import WithJsonSchema

CURSOR_PATTERN = r"^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CURSOR_DESCRIPTION = "`nextCursor` of the previous page"
_CURSOR = re.compile(CURSOR_PATTERN)
# The query parameter's type: the pattern is in the OpenAPI document, cursor_decode enforces it.
Cursor = Annotated[str, WithJsonSchema({"type": "string", "pattern": CURSOR_PATTERN})]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


class BadCursor(ValueError):
    """A string that is not a page cursor."""


def cursor_encode(*, at: datetime, pk: UUID) -> str:
    return f"{(at - _EPOCH) // timedelta(microseconds=1)}_{pk}"


def cursor_decode(cursor: str) -> tuple[datetime, UUID]:
    """(time, id) of the position; a time past the calendar's end reads as its last moment."""
    if not _CURSOR.fullmatch(cursor):
        raise BadCursor(
            "cursor is not one this API handed out (`<digits>_<uuid>`, the previous page's "
            "nextCursor); start again without it"
        )
    micros, _, pk = cursor.partition("_")
    try:
        at = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        at = _LATEST
    return min(at, _LATEST), UUID(pk)
