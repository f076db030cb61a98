"""What the sync and async clients share: request bodies, results, the retry policy, error mapping.

The two clients differ only in how they wait and send; everything that decides *what* is sent
and *whether* to retry lives here, so they cannot drift apart.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hogsend_client.errors import APIError, RateLimitError, ServiceUnavailableError, error_for

VERSION = "0.1.0"
USER_AGENT = f"hogsend-python/{VERSION}"
# Statuses that mean "come back later": the server said so (429, 503) or a proxy did (502, 504).
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class EventAccepted:
    """The server's answer to one event: ids, whether it was a repeat, the runs it ended."""

    event_id: str
    contact_id: str
    duplicate: bool
    exited_runs: list[str]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> EventAccepted:
        return cls(
            event_id=body["eventId"],
            contact_id=body["contactId"],
            duplicate=body["duplicate"],
            exited_runs=list(body.get("exitedRuns") or []),
        )


@dataclass(frozen=True)
class BatchItem:
    index: int
    status: str  # "accepted" | "duplicate" | "rejected"
    event_id: str | None
    contact_id: str | None
    exited_runs: list[str]
    errors: list[dict[str, Any]]
    idempotency_key: str


@dataclass(frozen=True)
class BatchResult:
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItem] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: dict[str, Any], keys: list[str]) -> BatchResult:
        return cls(
            accepted=body["accepted"],
            duplicates=body["duplicates"],
            rejected=body["rejected"],
            results=[
                BatchItem(
                    index=item["index"],
                    status=item["status"],
                    event_id=item.get("eventId"),
                    contact_id=item.get("contactId"),
                    exited_runs=list(item.get("exitedRuns") or []),
                    errors=list(item.get("errors") or []),
                    idempotency_key=keys[item["index"]],
                )
                for item in body["results"]
            ],
        )


@dataclass(frozen=True)
class Contact:
    id: str
    user_id: str
    email: str
    properties: dict[str, Any]
    subscribed: bool
    category_opt_outs: list[str]
    created_at: str
    updated_at: str
    created: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any], *, created: bool = False) -> Contact:
        return cls(
            id=body["id"],
            user_id=body["userId"],
            email=body["email"],
            properties=dict(body.get("properties") or {}),
            subscribed=body["subscribed"],
            category_opt_outs=list(body.get("categoryOptOuts") or []),
            created_at=body["createdAt"],
            updated_at=body["updatedAt"],
            created=created,
        )


def new_idempotency_key() -> str:
    return f"py_{uuid.uuid4().hex}"


def _timestamp(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware, e.g. datetime.now(timezone.utc)")
    return value.isoformat()


def event_body(
    *,
    name: str,
    user_id: str,
    user_email: str | None = None,
    event_properties: dict[str, Any] | None = None,
    contact_properties: dict[str, Any] | None = None,
    timestamp: datetime | str | None = None,
    idempotency_key: str | None = None,
    double_opt_in: bool | None = None,
) -> dict[str, Any]:
    """The JSON of one event (the API's camelCase), with an idempotency key of its own."""
    body: dict[str, Any] = {
        "name": name,
        "userId": user_id,
        "idempotencyKey": idempotency_key or new_idempotency_key(),
    }
    if user_email is not None:
        body["userEmail"] = user_email
    if event_properties:
        body["eventProperties"] = event_properties
    if contact_properties:
        body["contactProperties"] = contact_properties
    stamp = _timestamp(timestamp)
    if stamp is not None:
        body["timestamp"] = stamp
    if double_opt_in is not None:
        body["doubleOptIn"] = double_opt_in
    return body


def batch_body(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items take `send`'s keyword names; each gets an idempotency key that retries reuse."""
    if not events:
        raise ValueError("send_batch needs at least one event")
    items = []
    for index, item in enumerate(events):
        try:
            items.append(event_body(**item))
        except TypeError as error:
            raise TypeError(f"events[{index}]: {error}") from None
    return {"events": items}


def contact_body(
    *,
    user_id: str,
    email: str | None = None,
    properties: dict[str, Any] | None = None,
    double_opt_in: bool | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": user_id}
    if email is not None:
        body["email"] = email
    if properties:
        body["properties"] = properties
    if double_opt_in is not None:
        body["doubleOptIn"] = double_opt_in
    return body


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins, up to `max_wait`."""

    max_retries: int = 3
    backoff: float = 0.5
    max_wait: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up."""
        if attempt >= self.max_retries:
            return None
        advised = retry_after(response) if response is not None else None
        if advised is not None:
            return advised if advised <= self.max_wait else None
        return random.uniform(0, min(self.max_wait, self.backoff * (2**attempt)))


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


def raise_for_status(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a success; a typed `APIError` with the server's message otherwise."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code < 400:
        if not isinstance(body, dict):
            raise APIError(response.status_code, "the server answered with a body that is not a JSON object")
        return body
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str):
        detail = response.text[:500] or response.reason_phrase
    errors = body.get("errors") if isinstance(body, dict) else None
    kind = error_for(response.status_code)
    kwargs: dict[str, Any] = {"errors": errors, "body": body, "headers": dict(response.headers)}
    if kind in (RateLimitError, ServiceUnavailableError):
        kwargs["retry_after"] = retry_after(response)
    raise kind(response.status_code, detail, **kwargs)


def headers(api_key: str) -> dict[str, str]:
    if not api_key:
        raise ValueError("api_key is required: a secret key (hsk_...) from `manage.py create_api_key`")
    return {
        "Authorization": f"Bearer {api_key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }
