"""PostHog (its HTTP webhook destination, default body `{"event": {event}, "person": {person}}`):
each captured event becomes an event of the same name for its `distinct_id`; the person's email
property sets the contact's email. PostHog cannot sign, so add a header in the destination:
`Authorization: Bearer <the posthog entry of WEBHOOK_SECRETS>`. The event `uuid` is the delivery id."""

from __future__ import annotations

from integrations.sources.base import Received, SharedSecret, WebhookEvent, parse_time


def posthog_map(delivery: Received) -> list[WebhookEvent]:
    body = delivery.payload
    event = body.get("event") or {}
    person = body.get("person") or {}
    name, distinct_id = event.get("event"), event.get("distinct_id")
    if not name or not distinct_id:
        return []
    person_properties = person.get("properties") or {}
    properties = {k: v for k, v in (event.get("properties") or {}).items() if not k.startswith("$set")}
    return [
        WebhookEvent(
            name=name,
            user_id=str(distinct_id),
            email=person_properties.get("email"),
            properties={**properties, "posthog_event_uuid": event.get("uuid"), "url": event.get("url")},
            occurred_at=parse_time(event.get("timestamp")),
            idempotency_key=f"posthog:{event['uuid']}" if event.get("uuid") else None,
        )
    ]


SOURCE = dict(
    id="posthog",
    name="PostHog",
    verify=SharedSecret(),
    map=posthog_map,
    delivery_id_path="event.uuid",
)
