"""Response shapes of the segments API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ninja import Schema


class SegmentOut(Schema):
    id: str
    name: str
    description: str
    condition: str
    timeBased: bool
    size: int
    refreshedAt: datetime | None


class SegmentListOut(Schema):
    items: list[SegmentOut]


class MemberOut(Schema):
    contactId: UUID
    userId: str
    email: str
    properties: dict[str, Any]
    enteredAt: datetime


class MembersPageOut(Schema):
    items: list[MemberOut]
    nextCursor: str | None
