"""Any JSON webhook, by field mapping: dotted paths into the body say where each field is.

    define_webhook_source(
        "billing",
        verify=HmacSignature(header="X-Billing-Signature", prefix="sha256="),
        map=json_mapping(name="type", user_id="data.account.owner_id", email="data.account.email",
                         properties="data", occurred_at="created_at"),
        delivery_id_path="id",
    )

A `name` starting with `=` is a constant (`name="=invoice.paid"`). A body that is a JSON list
is several events.
"""

from __future__ import annotations

from typing import Any

from integrations.sources.base import Mapper, Received, WebhookEvent, dig, parse_time


def json_mapping(
    *,
    name: str,
    user_id: str,
    email: str | None = None,
    properties: str | None = None,
    contact_properties: str | None = None,
    occurred_at: str | None = None,
    event_id: str | None = None,
) -> Mapper:
    def field(item: Any, path: str | None) -> Any:
        if path is None:
            return None
        return path[1:] if path.startswith("=") else dig(item, path)

    def mapper(delivery: Received) -> list[WebhookEvent]:
        items = delivery.payload if isinstance(delivery.payload, list) else [delivery.payload]
        events = []
        for item in items:
            event_name, user = field(item, name), field(item, user_id)
            if not event_name or user in (None, ""):
                continue
            props = field(item, properties)
            contact_props = field(item, contact_properties)
            own_id = field(item, event_id)
            events.append(
                WebhookEvent(
                    name=str(event_name),
                    user_id=str(user),
                    email=field(item, email) or None,
                    properties=props if isinstance(props, dict) else {},
                    contact_properties=contact_props if isinstance(contact_props, dict) else {},
                    occurred_at=parse_time(field(item, occurred_at)),
                    idempotency_key=f"{delivery.source_id}:{own_id}" if own_id else None,
                )
            )
        return events

    return mapper
