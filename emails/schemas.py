from __future__ import annotations

from typing import Any
from uuid import UUID

from ninja import Schema
from pydantic import Field


class EmailSendIn(Schema):
    to: str = Field(min_length=3, max_length=320)
    template: str = Field(min_length=1, max_length=200)
    props: dict[str, Any] = Field(default_factory=dict)
    subject: str | None = Field(default=None, max_length=500)
    userId: str | None = Field(default=None, max_length=255)
    idempotencyKey: str | None = Field(default=None, max_length=255)


class EmailSendOut(Schema):
    emailId: UUID
    status: str
    reason: str
    duplicate: bool
