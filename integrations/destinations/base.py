"""What every destination kind is: it turns one lifecycle event into one HTTP request.

A kind only builds the request (URL, headers, body); `request_send` sends it with a timeout and
says whether the receiver took it (any 2xx). Retries, backoff and dead letters are the delivery
service's, the same for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    status_code: int | None = None
    error: str = ""


class DestinationKind(Protocol):
    def build(
        self, *, url: str, secret: str, delivery_id: str, envelope: dict[str, Any], sent_at: datetime
    ) -> OutboundRequest:
        """The request for one attempt; `delivery_id` is the same on every attempt."""


def request_send(request: OutboundRequest, *, timeout: float) -> SendOutcome:
    headers = {"Content-Type": "application/json", "User-Agent": "Hogsend-Webhooks/1", **request.headers}
    try:
        response = httpx.post(request.url, content=request.body, headers=headers, timeout=timeout)
    except httpx.HTTPError as error:
        return SendOutcome(ok=False, error=f"{type(error).__name__}: {error}"[:2000])
    if 200 <= response.status_code < 300:
        return SendOutcome(ok=True, status_code=response.status_code)
    return SendOutcome(
        ok=False,
        status_code=response.status_code,
        error=f"HTTP {response.status_code}: {response.text[:500]}",
    )


def user_of(envelope: dict[str, Any]) -> str | None:
    data = envelope.get("data") or {}
    return data.get("userId") or data.get("contactId") or None
