"""Clerk (signed by Svix): user and session events.

`user.created`, `user.updated`, `user.deleted` keep their names; the contact's email is the user's
primary address and its first/last name become contact properties. `session.created` becomes
`session.created` for the session's user. The `svix-id` header is the delivery id.
"""

from __future__ import annotations

from typing import Any

from integrations.sources.base import Received, SvixSignature, WebhookEvent, parse_time

USER_EVENTS = {"user.created", "user.updated", "user.deleted"}
SESSION_EVENTS = {"session.created", "session.ended", "session.removed", "session.revoked"}


def _primary_email(user: dict[str, Any]) -> str | None:
    primary = user.get("primary_email_address_id")
    addresses = user.get("email_addresses") or []
    for address in addresses:
        if address.get("id") == primary:
            return address.get("email_address")
    return addresses[0].get("email_address") if addresses else None


def clerk_map(delivery: Received) -> list[WebhookEvent]:
    body = delivery.payload
    kind = body.get("type", "")
    data = body.get("data") or {}
    occurred_at = parse_time(body.get("timestamp"))
    if kind in USER_EVENTS and data.get("id"):
        profile = {k: data.get(k) for k in ("first_name", "last_name", "username") if data.get(k) is not None}
        return [
            WebhookEvent(
                name=kind,
                user_id=str(data["id"]),
                email=_primary_email(data) if kind != "user.deleted" else None,
                properties={"clerk_instance_id": body.get("instance_id"), **profile},
                contact_properties=profile,
                occurred_at=occurred_at,
            )
        ]
    if kind in SESSION_EVENTS and data.get("user_id"):
        return [
            WebhookEvent(
                name=kind,
                user_id=str(data["user_id"]),
                properties={"session_id": data.get("id"), "status": data.get("status")},
                occurred_at=occurred_at,
            )
        ]
    return []


SOURCE = dict(id="clerk", name="Clerk", verify=SvixSignature(), map=clerk_map)
