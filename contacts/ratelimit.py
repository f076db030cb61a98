"""Per-key rate limits for the ingest endpoints, counted in Redis so every web process shares them.

Fixed one-second windows: cheap (one round trip), shared across processes and machines, and the
answer to a client past its limit is exact: 429 with `Retry-After: 1`. When Redis cannot answer,
ingest goes on unthrottled (logged): PostgreSQL, not Redis, holds what a client sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)
_client: Any = None
_warned_at = 0.0


class RateLimited(Exception):
    """A key went past its limit; the client should retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _redis() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.25, socket_connect_timeout=0.25)
    return _client


def _warn(error: Exception) -> None:
    global _warned_at
    if time.monotonic() - _warned_at > 10:  # once in a while, not once per request
        _warned_at = time.monotonic()
        logger.warning("rate limits not checked: Redis does not answer (%s)", error)


def browser_rate_check(*, key_id: int, address: str) -> None:
    """Count one request of a publishable key from one address (`PUBLIC_RATE_LIMIT_PER_IP` a second).

    A publishable key is public, so its own limit (`ingest_rate_check`) is shared by every
    visitor; this one keeps a single visitor (or a script that copied the key) from using it up.
    """
    limit = settings.PUBLIC_RATE_LIMIT_PER_IP
    if not limit:
        return
    counter = f"hogsend:ratelimit:{key_id}:ip:{address}:{int(time.time())}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, 2)
        requests, _ = pipe.execute()
    except Exception as error:
        _warn(error)
        return
    if requests > limit:
        raise RateLimited(
            f"this address sent more than {limit} requests in one second with this publishable key; "
            "retry after 1 second"
        )


def ingest_rate_check(*, key_id: int, events: int, requests_limit: int | None = None) -> None:
    """Count one request carrying `events` events against the key's per-second limits.

    Raises `RateLimited` when the key is past its requests limit (`requests_limit`, else
    `INGEST_RATE_LIMIT_REQUESTS`) or `INGEST_RATE_LIMIT_EVENTS` events in the current second.
    """
    max_requests = requests_limit or settings.INGEST_RATE_LIMIT_REQUESTS
    max_events = settings.INGEST_RATE_LIMIT_EVENTS
    if not max_requests and not max_events:
        return
    window = int(time.time())
    prefix = f"hogsend:ratelimit:{key_id}:{window}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(f"{prefix}:r")
        pipe.expire(f"{prefix}:r", 2)
        pipe.incrby(f"{prefix}:e", events)
        pipe.expire(f"{prefix}:e", 2)
        requests, _, total_events, _ = pipe.execute()
    except Exception as error:
        _warn(error)
        return
    if max_requests and requests > max_requests:
        raise RateLimited(
            f"this API key sent more than {max_requests} requests in one second; retry after 1 second, "
            "or send events in batches (POST /v1/events/batch)"
        )
    if max_events and total_events > max_events:
        raise RateLimited(
            f"this API key sent more than {max_events} events in one second; retry after 1 second"
        )
