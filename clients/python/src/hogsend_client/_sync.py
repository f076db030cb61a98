"""The synchronous client: `Hogsend(api_key=..., base_url=...)`."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from hogsend_client import _core
from hogsend_client._core import BatchResult, Contact, EventAccepted
from hogsend_client.errors import HogsendConnectionError, HogsendTimeoutError


class Hogsend:
    """A client for one Hogsend server. Thread-safe; reuse one per process.

    `timeout` bounds each attempt (seconds); `max_retries` retries follow a 429/502/503/504, a
    timeout or a dropped connection, waiting the server's `Retry-After` or an exponential backoff.
    Every call carries an idempotency key its retries reuse, so a retry never stores an event twice.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "http://localhost:8000",
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._headers = _core.headers(api_key)
        self._policy = _core.RetryPolicy(max_retries=max_retries, backoff=backoff, max_wait=max_retry_wait)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._base = base_url.rstrip("/")
        self.events = Events(self)
        self.contacts = Contacts(self)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Hogsend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, self._base + path, json=body, headers=self._headers)
            except httpx.TimeoutException as error:
                delay = self._policy.delay(attempt, None)
                if delay is None:
                    raise HogsendTimeoutError(
                        f"{method} {path} timed out after {attempt + 1} attempts"
                    ) from error
            except httpx.TransportError as error:
                delay = self._policy.delay(attempt, None)
                if delay is None:
                    raise HogsendConnectionError(
                        f"{method} {path}: cannot reach {self._base} ({error}) after {attempt + 1} attempts"
                    ) from error
            else:
                if response.status_code not in _core.RETRY_STATUSES:
                    return response
                delay = self._policy.delay(attempt, response)
                if delay is None:
                    _core.raise_for_status(response)
            time.sleep(delay)
            attempt += 1


class Events:
    def __init__(self, client: Hogsend) -> None:
        self._client = client

    def send(
        self,
        *,
        name: str,
        user_id: str,
        user_email: str | None = None,
        event_properties: dict[str, Any] | None = None,
        contact_properties: dict[str, Any] | None = None,
        timestamp: datetime | str | None = None,
        idempotency_key: str | None = None,
        double_opt_in: bool | None = None,
    ) -> EventAccepted:
        """Send one event. `timestamp` is an aware datetime or ISO 8601 (now if absent); without
        an `idempotency_key` one is generated, and retries of this call reuse it. `double_opt_in`:
        a contact this event creates must confirm by email first (default: the server's setting)."""
        body = _core.event_body(
            name=name,
            user_id=user_id,
            user_email=user_email,
            event_properties=event_properties,
            contact_properties=contact_properties,
            timestamp=timestamp,
            idempotency_key=idempotency_key,
            double_opt_in=double_opt_in,
        )
        response = self._client._request("POST", "/v1/events", body)
        return EventAccepted.from_json(_core.raise_for_status(response))

    def send_batch(self, events: list[dict[str, Any]]) -> BatchResult:
        """Send up to 1,000 events (dicts with `send`'s keyword names); a bad item is rejected alone."""
        body = _core.batch_body(events)
        response = self._client._request("POST", "/v1/events/batch", body)
        keys = [item["idempotencyKey"] for item in body["events"]]
        return BatchResult.from_json(_core.raise_for_status(response), keys)


class Contacts:
    def __init__(self, client: Hogsend) -> None:
        self._client = client

    def upsert(
        self,
        *,
        user_id: str,
        email: str | None = None,
        properties: dict[str, Any] | None = None,
        double_opt_in: bool | None = None,
    ) -> Contact:
        """Create or update a contact by your user id; properties merge into what is stored."""
        body = _core.contact_body(
            user_id=user_id, email=email, properties=properties, double_opt_in=double_opt_in
        )
        response = self._client._request("PUT", "/v1/contacts", body)
        return Contact.from_json(_core.raise_for_status(response), created=response.status_code == 201)

    def get(self, key: str) -> Contact:
        """A contact by Hogsend's id or your user id (needs the `read` scope)."""
        response = self._client._request("GET", f"/v1/contacts/{quote(key, safe='')}")
        return Contact.from_json(_core.raise_for_status(response))
