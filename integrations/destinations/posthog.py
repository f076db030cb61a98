"""PostHog's capture API (`POST <host>/i/v0/e/`): one event per lifecycle event, for the contact's
user id as `distinct_id`. The delivery id is the event `uuid`, so PostHog drops a retried duplicate."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from integrations.destinations.base import OutboundRequest, user_of


class PostHogKind:
    def build(
        self, *, url: str, secret: str, delivery_id: str, envelope: dict[str, Any], sent_at: datetime
    ) -> OutboundRequest:
        host = url.rstrip("/")
        endpoint = host if host.endswith(("/i/v0/e", "/capture")) else f"{host}/i/v0/e"
        body = {
            "api_key": secret,
            "event": envelope["type"],
            "distinct_id": user_of(envelope) or "hogsend",
            "uuid": delivery_id,
            "timestamp": envelope["occurredAt"],
            "properties": {
                **(envelope.get("data") or {}),
                "$lib": "hogsend",
                "hogsend_event_id": envelope["id"],
                "hogsend_event_version": envelope["version"],
            },
        }
        return OutboundRequest(url=endpoint + "/", body=json.dumps(body).encode())
