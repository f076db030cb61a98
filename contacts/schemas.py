from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ninja import Schema
from pydantic import ConfigDict, EmailStr, Field, model_validator


class EventIn(Schema):
    """An event in the shape clients of the original product send (camelCase)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=255, description="Event name, e.g. user.created")
    userId: str = Field(min_length=1, max_length=255, description="Your product's id for the user")
    userEmail: EmailStr | None = Field(default=None, description="The user's email (alias: email)")
    email: EmailStr | None = Field(default=None, description="Alias of userEmail")
    eventProperties: dict[str, Any] = Field(default_factory=dict)
    contactProperties: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime | None = Field(default=None, description="When it happened (ISO 8601); now if absent")
    idempotencyKey: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _timestamp_has_timezone(self) -> EventIn:
        if self.timestamp is not None and self.timestamp.tzinfo is None:
            raise ValueError("timestamp must include a timezone offset, e.g. 2026-06-18T15:00:00Z")
        return self

    @property
    def address(self) -> str | None:
        return self.userEmail or self.email


class EventAccepted(Schema):
    eventId: UUID
    contactId: UUID
    duplicate: bool
    exitedRuns: list[UUID]


class BatchIn(Schema):
    events: list[dict[str, Any]] = Field(min_length=1, description="Up to 1,000 events")


class BatchItemResult(Schema):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    eventId: UUID | None = None
    contactId: UUID | None = None
    exitedRuns: list[UUID] = []
    errors: list[dict[str, Any]] = []


class BatchOut(Schema):
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


class ContactIn(Schema):
    model_config = ConfigDict(extra="forbid")

    userId: str = Field(min_length=1, max_length=255)
    email: EmailStr | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class ContactOut(Schema):
    id: UUID
    userId: str
    email: str
    properties: dict[str, Any]
    subscribed: bool
    categoryOptOuts: list[str]
    createdAt: datetime
    updatedAt: datetime


class TimelineItem(Schema):
    type: Literal["event", "journey_run", "email"]
    at: datetime
    id: UUID
    name: str
    status: str | None = None
    detail: dict[str, Any] = {}


class TimelineOut(Schema):
    contact: ContactOut
    items: list[TimelineItem]
