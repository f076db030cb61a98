"""A Slack incoming webhook: one human-readable line per lifecycle event (`{"text": ...}`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from integrations.destinations.base import OutboundRequest


def slack_text(envelope: dict[str, Any]) -> str:
    kind, data = envelope["type"], envelope.get("data") or {}
    who = data.get("email") or data.get("to") or data.get("userId") or data.get("contactId") or "someone"
    reason = f" ({data['reason']})" if data.get("reason") else ""
    family, _, what = kind.partition(".")
    if kind == "operator.alert":
        return f":rotating_light: *{data.get('title', 'Alert')}*\n{data.get('text', '')}".strip()
    if kind == "destination.test":
        return f":wave: Test message from Hogsend to *{data.get('destination', 'this channel')}*."
    if family == "email":
        return f"Email *{data.get('template', '?')}* to {who}: {what}{reason}"
    if family == "journey":
        return f"{who} {what} journey *{data.get('journeyId', '?')}*{reason}"
    if family == "contact":
        return f"Contact {who} {what}{reason}"
    return f"{kind}: {who}"


class SlackKind:
    def build(
        self, *, url: str, secret: str, delivery_id: str, envelope: dict[str, Any], sent_at: datetime
    ) -> OutboundRequest:
        return OutboundRequest(url=url, body=json.dumps({"text": slack_text(envelope)}).encode())
