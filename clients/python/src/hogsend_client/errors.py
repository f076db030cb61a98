"""Typed errors. An `APIError` carries the server's own message (`detail`) and field errors."""

from __future__ import annotations

from typing import Any


class HogsendError(Exception):
    """Base class of every error this client raises."""


class HogsendConnectionError(HogsendError):
    """The server could not be reached (refused, reset, DNS), after every retry."""


class HogsendTimeoutError(HogsendConnectionError):
    """The server did not answer within the timeout, after every retry."""


class APIError(HogsendError):
    """The server answered with an error status.

    `detail` is the server's explanation (what is wrong and how to fix it), `errors` the
    `{"field", "message"}` list of a 422, `body` the whole JSON body.
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.errors = errors or []
        self.body = body
        self.headers = headers or {}


class BadRequestError(APIError):
    """400: the body could not be read (not JSON, not UTF-8)."""


class AuthenticationError(APIError):
    """401: the API key is missing, unknown, revoked or expired."""


class PermissionDeniedError(APIError):
    """403: the key lacks the scope this call needs (or is a publishable key)."""


class NotFoundError(APIError):
    """404: no such resource."""


class ConflictError(APIError):
    """409: conflicts with what is stored (an idempotency key of another user's event)."""


class PayloadTooLargeError(APIError):
    """413: the body is too large (split the batch)."""


class ValidationError(APIError):
    """422: a field is invalid; `errors` names each one."""


class RateLimitError(APIError):
    """429 after every retry; `retry_after` is the server's Retry-After in seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailableError(APIError):
    """503 after every retry (the server's database is unavailable)."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """Any other 5xx; `detail` carries the server log reference."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_for(status_code: int) -> type[APIError]:
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return ServerError if status_code >= 500 else APIError
