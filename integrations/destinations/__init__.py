"""Destination kinds by `Destination.kind`."""

from __future__ import annotations

from integrations.destinations.base import DestinationKind, OutboundRequest, SendOutcome, request_send
from integrations.destinations.posthog import PostHogKind
from integrations.destinations.segment import SegmentKind
from integrations.destinations.slack import SlackKind, slack_text
from integrations.destinations.webhook import WebhookKind

KINDS: dict[str, DestinationKind] = {
    "webhook": WebhookKind(),
    "posthog": PostHogKind(),
    "segment": SegmentKind(),
    "slack": SlackKind(),
}

__all__ = ["KINDS", "DestinationKind", "OutboundRequest", "SendOutcome", "request_send", "slack_text"]
