"""Segment (the Webhooks destination): `track` calls become events of the same name; `identify`
becomes `user.identified` with the traits merged into the contact. Signed with a shared secret:
`X-Signature` is the hex HMAC-SHA1 of the body. `messageId` is the delivery id."""

from __future__ import annotations

from integrations.sources.base import HmacSignature, Received, WebhookEvent, parse_time

IDENTIFY_EVENT = "user.identified"


def segment_map(delivery: Received) -> list[WebhookEvent]:
    message = delivery.payload
    messages = message.get("batch") if isinstance(message.get("batch"), list) else [message]
    events = []
    for item in messages:
        user_id = item.get("userId")
        if not user_id:  # anonymous traffic has no contact yet
            continue
        kind = item.get("type")
        occurred_at = parse_time(item.get("timestamp") or item.get("originalTimestamp"))
        key = f"segment:{item['messageId']}" if item.get("messageId") else None
        if kind == "track" and item.get("event"):
            events.append(
                WebhookEvent(
                    name=item["event"],
                    user_id=str(user_id),
                    email=(item.get("context") or {}).get("traits", {}).get("email"),
                    properties=item.get("properties") or {},
                    occurred_at=occurred_at,
                    idempotency_key=key,
                )
            )
        elif kind == "identify":
            traits = item.get("traits") or {}
            events.append(
                WebhookEvent(
                    name=IDENTIFY_EVENT,
                    user_id=str(user_id),
                    email=traits.get("email"),
                    properties={"traits": traits},
                    contact_properties={k: v for k, v in traits.items() if k != "email"},
                    occurred_at=occurred_at,
                    idempotency_key=key,
                )
            )
    return events


SOURCE = dict(
    id="segment",
    name="Segment",
    verify=HmacSignature(header="X-Signature", algorithm="sha1"),
    map=segment_map,
    delivery_id_path="messageId",
)
