"""Request and response shapes of the events & contacts API.

Every string and JSON value that reaches PostgreSQL is checked here first, so the database never
sees what it cannot store (a NUL, a lone surrogate, NaN, a year-10000 timestamp): the client gets a
422 naming the field and the fix instead of a 500 after a half-finished write.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import available_timezones

from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from contacts.fields import EmailAddress
from contacts.timezones import TIMEZONE_PROPERTY, timezone_check, timezone_problem

# Event times are accepted from 2000-01-01 (older than any product analytics worth replaying) up
# to one day ahead of the server clock (room for a client clock that runs fast, never a date so far
# out that the outbox or a journey's time window could misread it).
TIMESTAMP_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX_AHEAD = timedelta(days=1)
# PostgreSQL reads UTC offsets up to ±15:59; Python would accept up to ±23:59.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


def text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000); remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (e.g. \\ud800 without its pair); send valid Unicode"
    return None


def _clean_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank (only whitespace); send a non-empty value")
    return value


def json_problem(value: Any, path: str) -> str | None:
    """Where in a JSON value something PostgreSQL cannot store sits (a NUL, a lone surrogate,
    NaN or Infinity), in words; None when all of it can be stored."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{path}: {problem}" if problem else None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: {value} is not a JSON number; send a finite number or a string"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(str(key))
            if problem:
                return f"{path}: the key {key!r} {problem}"
            problem = json_problem(item, f"{path}.{key}")
            if problem:
                return problem
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{path}[{index}]")
            if problem:
                return problem
    return None


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    problem = json_problem(value, "$")
    if problem:
        raise ValueError(problem)
    return value


def _sane_timestamp(value: datetime | None) -> datetime | None:
    """Refuses what cannot be stored or read back; a time more than a day ahead of the server's
    clock is a client clock gone wrong, and the event is taken to occur when it is accepted."""
    if value is None:
        return None
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("timestamp must include a timezone offset, e.g. 2026-06-18T15:00:00Z")
    if abs(offset) > MAX_UTC_OFFSET:
        raise ValueError("timezone offset is out of range; use one between -15:59 and +15:59, or Z")
    if value < TIMESTAMP_EARLIEST:
        raise ValueError(
            "timestamp must not be before 2000-01-01T00:00:00Z; send when the event happened, "
            "or leave it out for now"
        )
    if value > timezone.now() + TIMESTAMP_MAX_AHEAD:
        return None
    return value


# An RFC 3339 time from the year 2000 on, its offset within what PostgreSQL reads (±15:59).
TIMESTAMP_PATTERN = r"^(2[0-9]{3}|[3-9][0-9]{3})-.*(Z|z|[+-](0[0-9]|1[0-5]):[0-5][0-9])$"


# What the validators enforce, declared in the OpenAPI document too, so a generated client refuses
# what the server refuses. JSON Schema cannot forbid a lone surrogate; JSON text cannot carry NaN.
NO_NUL_PATTERN = r"^[^\u0000]*$"
NOT_BLANK_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"  # `\s` as str.strip() reads whitespace
JSON_VALUE_REF = "#/components/schemas/JsonValue"
# Properties: any JSON object whose keys and strings, at any depth, hold no NUL.
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value; no string or key in it may contain a NUL character",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL_PATTERN},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL_PATTERN},
            "additionalProperties": {"$ref": JSON_VALUE_REF},
        },
    ],
}
PROPERTIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": NO_NUL_PATTERN},
    "additionalProperties": {"$ref": JSON_VALUE_REF},
}
# pydantic cannot emit a $ref to a schema it does not know: fields carry this marker, and the
# OpenAPI document replaces it with PROPERTIES_SCHEMA (hogsend.errors.HogsendAPI).
PROPERTIES_MARKER = "x-hogsend-properties"

# Identifiers: no NUL or lone surrogate, and not only whitespace.
Identifier = Annotated[
    str,
    AfterValidator(_clean_text),
    AfterValidator(_not_blank),
    Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN}),
]
CleanText = Annotated[str, AfterValidator(_clean_text), Field(json_schema_extra={"pattern": NO_NUL_PATTERN})]
Properties = Annotated[
    dict[str, Any],
    AfterValidator(_storable_json),
    WithJsonSchema({"type": "object", PROPERTIES_MARKER: True}),
]
TimeZoneName = Annotated[
    str,
    AfterValidator(timezone_check),
    Field(
        max_length=64,
        description="The contact's IANA time zone, e.g. Europe/Berlin; quiet hours and local-time "
        "waits use it (stored as the contact property `timezone`)",
        examples=["Europe/Berlin"],
        # The names the server accepts, so a client generating requests from the schema sends one.
        json_schema_extra={"enum": sorted(available_timezones())},
    ),
]


def _timezone_property_check(properties: dict[str, Any]) -> dict[str, Any]:
    """A `timezone` contact property must be a zone the send-time policy can use."""
    if TIMEZONE_PROPERTY in properties:
        problem = timezone_problem(properties[TIMEZONE_PROPERTY])
        if problem:
            raise ValueError(f"{TIMEZONE_PROPERTY}: {problem}")
    return properties


EventTime = Annotated[
    datetime | None, AfterValidator(_sane_timestamp), Field(json_schema_extra={"pattern": TIMESTAMP_PATTERN})
]


def _schedulable_time(value: datetime | None) -> datetime | None:
    """A moment to do something at (past ones mean now): an explicit offset PostgreSQL reads, in a
    year every offset keeps inside the calendar."""
    if value is None:
        return None
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("must include a timezone offset, e.g. 2026-06-18T15:00:00Z")
    if abs(offset) > MAX_UTC_OFFSET:
        raise ValueError("timezone offset is out of range; use one between -15:59 and +15:59, or Z")
    if not 1900 <= value.year <= 9998:
        raise ValueError("year must be between 1900 and 9998")
    return value


# An RFC 3339 time from 1900 to 9998, its offset within what PostgreSQL reads (±15:59).
SCHEDULE_PATTERN = r"^(19[0-9]{2}|[2-9][0-9]{3})-.*(Z|z|[+-](0[0-9]|1[0-5]):[0-5][0-9])$"
ScheduleTime = Annotated[
    datetime | None, AfterValidator(_schedulable_time), Field(json_schema_extra={"pattern": SCHEDULE_PATTERN})
]


class EventIn(BaseModel):
    """An event in the shape clients of the original product send (camelCase).

    A plain pydantic model, not a ninja `Schema`: `Schema` reads ORM objects through a wrapper and,
    with `extra="forbid"`, validates every body twice; ingest validates thousands a second.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Identifier = Field(min_length=1, max_length=255, description="Event name, e.g. user.created")
    userId: Identifier = Field(min_length=1, max_length=255, description="Your product's id for the user")
    userEmail: EmailAddress | None = Field(default=None, description="The user's email (alias: email)")
    email: EmailAddress | None = Field(default=None, description="Alias of userEmail")
    eventProperties: Properties = Field(default_factory=dict)
    contactProperties: Properties = Field(default_factory=dict)
    timestamp: EventTime = Field(
        default=None,
        description="When it happened (RFC 3339 with an offset within ±15:59), from "
        "2000-01-01T00:00:00Z on; now if absent or more than a day ahead of the server's clock",
    )
    idempotencyKey: Identifier | None = Field(default=None, min_length=1, max_length=255)
    doubleOptIn: bool | None = Field(
        default=None,
        description="If this event creates the contact, it must confirm by email (a confirmation is "
        "sent to userEmail) before anything else is sent to it; default: CONTACTS_DOUBLE_OPT_IN",
    )

    timezone: TimeZoneName | None = None

    _contact_timezone = field_validator("contactProperties")(_timezone_property_check)

    @property
    def address(self) -> str | None:
        return self.userEmail or self.email

    @property
    def contact_fields(self) -> dict[str, Any]:
        """The contact properties this event sets, its `timezone` field among them."""
        if self.timezone is None:
            return self.contactProperties
        return {**self.contactProperties, TIMEZONE_PROPERTY: self.timezone}


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

    userId: Identifier = Field(min_length=1, max_length=255)
    email: EmailAddress | None = None
    properties: Properties = Field(default_factory=dict)
    timezone: TimeZoneName | None = None
    doubleOptIn: bool | None = Field(
        default=None,
        description="If this call creates the contact, it must confirm by email before anything "
        "else is sent to it; default: CONTACTS_DOUBLE_OPT_IN",
    )

    _properties_timezone = field_validator("properties")(_timezone_property_check)

    @property
    def contact_fields(self) -> dict[str, Any]:
        if self.timezone is None:
            return self.properties
        return {**self.properties, TIMEZONE_PROPERTY: self.timezone}


class ContactOut(Schema):
    id: UUID
    userId: str
    email: str
    properties: dict[str, Any]
    timezone: str = "UTC"
    subscribed: bool
    categoryOptOuts: list[str]
    confirmationRequired: bool = False
    confirmedAt: datetime | None = None
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
