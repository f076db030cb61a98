"""The lifecycle events Hogsend emits to destinations, each with a versioned JSON Schema.

Every delivery carries the same envelope:

    {"id": "<event uuid>", "type": "email.bounced", "version": 1,
     "occurredAt": "2026-11-23T10:00:00+00:00", "data": {...}}

`id` is the same for every destination that receives the event; the delivery id (the Standard
Webhooks `webhook-id`, PostHog's `uuid`, Segment's `messageId`) is stable across retries. A change
that could break a receiver bumps `version`; adding an optional field does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "type", "version", "occurredAt", "data"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "type": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "occurredAt": {"type": "string", "format": "date-time"},
        "data": {"type": "object"},
    },
}

_ID = {"type": "string", "format": "uuid"}
_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}

_CONTACT = {
    "contactId": _ID,
    "userId": _TEXT,
    "email": _TEXT,
    "subscribed": {"type": "boolean"},
    "properties": {"type": "object"},
}
_RUN = {
    "runId": _ID,
    "journeyId": _TEXT,
    "contactId": _ID,
    "userId": _TEXT,
    "status": {"enum": ["active", "waiting", "completed", "failed", "exited"]},
    "enteredAt": _TIME,
    "endedAt": _TIME,
    "reason": _TEXT,
}
_EMAIL = {
    "emailId": _ID,
    "to": _TEXT,
    "contactId": {"type": ["string", "null"], "format": "uuid"},
    "userId": _MAYBE_TEXT,
    "template": _TEXT,
    "subject": _TEXT,
    "category": _TEXT,
    "status": {
        "enum": [
            "held",
            "queued",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "bounced",
            "complained",
            "failed",
            "suppressed",
            "skipped",
            "unknown",
        ]
    },
    "reason": _TEXT,
    # When a held email goes out (quiet hours, a frequency cap); null for any other status.
    "heldUntil": {"type": ["string", "null"], "format": "date-time"},
    "runId": {"type": ["string", "null"], "format": "uuid"},
    "journeyId": _MAYBE_TEXT,
}


@dataclass(frozen=True)
class LifecycleEventType:
    type: str
    version: int
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"hogsend:lifecycle/{self.type}/v{self.version}",
            "title": self.type,
            "description": self.description,
            "type": "object",
            "required": list(self.required),
            "properties": self.properties,
        }


def _contact(type_: str, description: str, **extra: Any) -> LifecycleEventType:
    return LifecycleEventType(
        type_, 1, description, {**_CONTACT, **extra}, ("contactId", "userId", *extra.keys())
    )


def _run(type_: str, description: str) -> LifecycleEventType:
    return LifecycleEventType(type_, 1, description, _RUN, ("runId", "journeyId", "contactId", "status"))


def _email(status: str, description: str) -> LifecycleEventType:
    return LifecycleEventType(
        f"email.{status}", 1, description, _EMAIL, ("emailId", "to", "template", "status")
    )


def _segment(type_: str, description: str) -> LifecycleEventType:
    properties = {"segmentId": _TEXT, "segmentName": _TEXT, "contactId": _ID, "userId": _TEXT}
    return LifecycleEventType(type_, 1, description, properties, ("segmentId", "contactId", "userId"))


CATALOG: dict[str, LifecycleEventType] = {
    spec.type: spec
    for spec in [
        _contact("contact.created", "A contact was seen for the first time (event, API or import)."),
        _contact("contact.updated", "A contact's email or properties changed."),
        _contact("contact.unsubscribed", "The contact unsubscribed from all non-transactional mail."),
        _contact("contact.resubscribed", "An operator or the contact lifted a global unsubscribe."),
        _contact("contact.confirmed", "The contact confirmed a double opt-in signup by its email link."),
        LifecycleEventType(
            "contact.suppressed",
            1,
            "An address was put on the suppression list (bounces, a complaint, an operator).",
            {"email": _TEXT, "reason": {"enum": ["bounce", "complaint", "manual"]}, "note": _TEXT},
            ("email", "reason"),
        ),
        _run("journey.entered", "A contact entered a journey (a run started)."),
        _run("journey.completed", "A run reached the end of its journey."),
        _run("journey.exited", "A run ended early: an exit_on event, an operator, an erasure."),
        _run("journey.failed", "A run raised an error; an operator may retry it."),
        _email(
            "held",
            "The send-time policy held the email until heldUntil (the recipient's quiet hours, or the next "
            "free slot of a frequency cap); it is sent then.",
        ),
        _email("queued", "An email passed consent checks and waits for the provider."),
        _email("sent", "The provider accepted the email."),
        _email("delivered", "The provider reported delivery to the mailbox."),
        _email("opened", "The recipient opened the email (first open)."),
        _email("clicked", "The recipient clicked a link (first click)."),
        _email("bounced", "The email bounced permanently."),
        _email("complained", "The recipient marked the email as spam."),
        _email("failed", "The provider refused the email, or retries ran out."),
        _email("suppressed", "The email was not sent: suppression, unsubscribe, opt-out, exit."),
        _email("skipped", "The email was not sent: the contact has no email address."),
        _email(
            "unknown",
            "The worker stopped during the provider call; the email may have gone out and is not sent again.",
        ),
        _segment("segment.entered", "A contact entered a segment (its condition became true)."),
        _segment("segment.exited", "A contact left a segment (its condition became false)."),
        LifecycleEventType(
            "operator.alert",
            1,
            "An operations alert fired or resolved (bounce rate, outbox lag, dead letters...).",
            {"title": _TEXT, "text": _TEXT, "alert": {"type": "object"}},
            ("title", "text"),
        ),
        LifecycleEventType(
            "destination.test",
            1,
            "Sent by the Studio's test-send button; ignore it in your receiver.",
            {"destination": _TEXT, "message": _TEXT},
            ("destination",),
        ),
    ]
}


class UnknownLifecycleEvent(ValueError):
    pass


def event_type_get(event_type: str) -> LifecycleEventType:
    try:
        return CATALOG[event_type]
    except KeyError:
        raise UnknownLifecycleEvent(
            f"{event_type!r} is not a lifecycle event; known: {', '.join(CATALOG)}"
        ) from None
