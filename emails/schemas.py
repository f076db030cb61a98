from __future__ import annotations

from uuid import UUID

from ninja import Schema
from pydantic import Field

from contacts.schemas import CleanText, Identifier, Properties


class EmailSendIn(Schema):
    to: Identifier = Field(min_length=3, max_length=320)
    template: Identifier = Field(min_length=1, max_length=200)
    props: Properties = Field(default_factory=dict)
    subject: CleanText | None = Field(default=None, max_length=500)
    userId: Identifier | None = Field(default=None, max_length=255)
    idempotencyKey: Identifier = Field(
        min_length=1,
        max_length=255,
        description="Required: a repeat with the same key answers 200 with the first result and sends nothing",
    )


class EmailSendOut(Schema):
    emailId: UUID
    status: str
    reason: str
    duplicate: bool
