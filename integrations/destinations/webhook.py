"""A generic webhook signed per the Standard Webhooks specification: `webhook-id` (the stable
delivery id), `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the `whsec_` secret). Receivers verify with
any Standard Webhooks or Svix library."""

from __future__ import annotations

import json
from datetime import datetime
from math import floor
from typing import Any

from standardwebhooks import Webhook

from integrations.destinations.base import OutboundRequest


class WebhookKind:
    def build(
        self, *, url: str, secret: str, delivery_id: str, envelope: dict[str, Any], sent_at: datetime
    ) -> OutboundRequest:
        body = json.dumps(envelope, separators=(",", ":"))
        signature = Webhook(secret).sign(msg_id=delivery_id, timestamp=sent_at, data=body)
        return OutboundRequest(
            url=url,
            body=body.encode(),
            headers={
                "webhook-id": delivery_id,
                "webhook-timestamp": str(floor(sent_at.timestamp())),
                "webhook-signature": signature,
            },
        )
