"""Hogsend's Python client: send events and upsert contacts over the HTTP API, sync or async.

from hogsend_client import Hogsend
hs = Hogsend(api_key="hsk_...", base_url="http://localhost:8000")
hs.events.send(name="csm.contacted", user_id="user_123", event_properties={"csm_name": "Sarah"})
"""

from __future__ import annotations

from hogsend_client._async import AsyncHogsend
from hogsend_client._core import VERSION as __version__
from hogsend_client._core import BatchItem, BatchResult, Contact, EventAccepted
from hogsend_client._sync import Hogsend
from hogsend_client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HogsendConnectionError,
    HogsendError,
    HogsendTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)

__all__ = [
    "APIError",
    "AsyncHogsend",
    "AuthenticationError",
    "BadRequestError",
    "BatchItem",
    "BatchResult",
    "ConflictError",
    "Contact",
    "EventAccepted",
    "Hogsend",
    "HogsendConnectionError",
    "HogsendError",
    "HogsendTimeoutError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "ValidationError",
    "__version__",
]
