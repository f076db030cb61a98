from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from ninja import Schema
from pydantic import Field

from contacts.fields import MailableAddress
from contacts.schemas import CleanText, Identifier, Properties
from emails.registry import EmailTemplate, all_templates


class EmailSendIn(Schema):
    to: MailableAddress
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
    heldUntil: datetime | None = Field(
        default=None,
        description="When a held email goes out (status `held`: the recipient's quiet hours, or the next "
        "free slot of a frequency cap)",
    )


class EmailStatusOut(Schema):
    emailId: UUID
    to: str
    template: str
    category: str
    status: str
    reason: str
    heldUntil: datetime | None = Field(default=None, description="When a held email goes out")
    createdAt: datetime
    sentAt: datetime | None = None


def template_props_rules(templates: Iterable[EmailTemplate]) -> list[dict[str, Any]]:
    """JSON Schema rules saying, for each template that has required props, that a body naming it
    carries them (email_render counts null and "" as missing)."""
    return [
        {
            "if": {"properties": {"template": {"const": t.key}}, "required": ["template"]},
            "then": {
                "required": ["props"],
                "properties": {
                    "props": {
                        "required": list(t.required_props),
                        "properties": {name: {"not": {"enum": [None, ""]}} for name in t.required_props},
                    }
                },
            },
        }
        for t in templates
        if t.required_props
    ]


def email_send_in_schema_complete(component: dict[str, Any]) -> None:
    """Say in the OpenAPI document what the server checks against the template registry: the
    template is a registered one, and its required props are present."""
    templates = all_templates()
    component["properties"]["template"]["enum"] = [t.key for t in templates]
    component["allOf"] = template_props_rules(templates)
