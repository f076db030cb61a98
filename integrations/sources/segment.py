"""Segment (the Webhooks destination): `track` calls become events of the same name; `identify`
becomes `user.identified` with the traits merged into the contact. Signed with a shared secret:
`X-Signature` is the hex HMAC-SHA1 of the body. `messageId` is the delivery id. With batching on,
the Webhooks (Actions) destination posts a JSON array of messages: each is answered on its own and
deduplicated by its messageId."""

from __future__ import annotations

from typing import Any

from integrations.sources.base import HmacSignature, Received, WebhookEvent, WebhookSkip, parse_time

IDENTIFY_EVENT = "user.identified"


def _messages(payload: Any) -> list[Any]:
    # One message; a JSON array of them (the Webhooks (Actions) destination with batching on); or
    # the tracking API's `{"batch": [...]}`.
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("batch"), list):
        return payload["batch"]
    return [payload]


def _message_event(item: Any, index: int) -> WebhookEvent | WebhookSkip:
    if not isinstance(item, dict):
        return WebhookSkip(f"#{index}", "a message is a JSON object")
    message_id = str(item.get("messageId") or f"#{index}")
    user_id = item.get("userId")
    if user_id in (None, "") or isinstance(user_id, dict | list):
        # Anonymous traffic has no contact yet.
        return WebhookSkip(message_id, "no userId (anonymous traffic is not a contact yet)")
    kind = item.get("type")
    occurred_at = parse_time(item.get("timestamp") or item.get("originalTimestamp"))
    key = f"segment:{item['messageId']}" if item.get("messageId") else None
    context = item.get("context") if isinstance(item.get("context"), dict) else {}
    traits = item.get("traits") if isinstance(item.get("traits"), dict) else {}
    properties = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    if kind == "track" and isinstance(item.get("event"), str) and item["event"]:
        context_traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}
        return WebhookEvent(
            name=item["event"],
            user_id=str(user_id),
            email=_text(context_traits.get("email")),
            properties=properties,
            occurred_at=occurred_at,
            idempotency_key=key,
            message_id=message_id,
        )
    if kind == "identify":
        return WebhookEvent(
            name=IDENTIFY_EVENT,
            user_id=str(user_id),
            email=_text(traits.get("email")),
            properties={"traits": traits},
            contact_properties={k: v for k, v in traits.items() if k != "email"},
            occurred_at=occurred_at,
            idempotency_key=key,
            message_id=message_id,
        )
    return WebhookSkip(message_id, f"a {str(kind)[:40]!r} call becomes no event (track and identify do)")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def segment_map(delivery: Received) -> list[WebhookEvent | WebhookSkip]:
    return [_message_event(item, index) for index, item in enumerate(_messages(delivery.payload))]


SOURCE = dict(
    id="segment",
    name="Segment",
    verify=HmacSignature(header="X-Signature", algorithm="sha1"),
    map=segment_map,
    delivery_id_path="messageId",
)
