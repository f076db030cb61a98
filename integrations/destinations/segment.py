"""Segment's HTTP tracking API (`POST <host>/v1/track`, basic auth with the write key). The delivery
id is the `messageId`, which Segment uses to drop a retried duplicate."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from integrations.destinations.base import OutboundRequest, user_of


class SegmentKind:
    def build(
        self, *, url: str, secret: str, delivery_id: str, envelope: dict[str, Any], sent_at: datetime
    ) -> OutboundRequest:
        host = url.rstrip("/")
        endpoint = host if host.endswith("/v1/track") else f"{host}/v1/track"
        user = user_of(envelope)
        body: dict[str, Any] = {
            "event": envelope["type"],
            "messageId": delivery_id,
            "timestamp": envelope["occurredAt"],
            "properties": {**(envelope.get("data") or {}), "hogsendEventId": envelope["id"]},
            "context": {"library": {"name": "hogsend", "version": str(envelope["version"])}},
        }
        body["userId" if user else "anonymousId"] = user or "hogsend"
        auth = base64.b64encode(f"{secret}:".encode()).decode()
        return OutboundRequest(
            url=endpoint, body=json.dumps(body).encode(), headers={"Authorization": f"Basic {auth}"}
        )
