"""Mail backends and the provider error taxonomy (transient → retry, permanent → fail now)."""

from __future__ import annotations

import smtplib
import socket
from typing import Any

from anymail.backends.resend import EmailBackend as AnymailResendBackend
from anymail.exceptions import AnymailAPIError, AnymailInvalidAddress, AnymailRecipientsRefused

IDEMPOTENCY_ATTR = "hogsend_idempotency_key"


class ResendEmailBackend(AnymailResendBackend):
    """anymail's Resend backend plus Resend's `Idempotency-Key` HTTP header (24 h dedupe on their side),
    so a retry after a timeout that did reach Resend does not send twice."""

    def build_message_payload(self, message: Any, defaults: Any) -> Any:
        payload = super().build_message_payload(message, defaults)
        key = getattr(message, IDEMPOTENCY_ATTR, None)
        if key:
            payload.headers["Idempotency-Key"] = str(key)[:256]
        return payload


def error_is_transient(error: BaseException) -> bool:
    """Timeouts, connection trouble, 429 and 5xx are worth retrying; everything else is permanent
    (a bad address, a bad key, a malformed message), and retrying would only repeat it."""
    if isinstance(error, AnymailRecipientsRefused | AnymailInvalidAddress):
        return False
    if isinstance(error, AnymailAPIError):
        status = getattr(error, "status_code", None)
        if status is None:
            cause = error.__cause__ or error.__context__
            return cause is not None and error_is_transient(cause)
        return status == 429 or status >= 500
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    try:
        import requests

        if isinstance(error, requests.Timeout | requests.ConnectionError):
            return True
    except ImportError:  # pragma: no cover - anymail's requests backends need it
        pass
    return isinstance(error, socket.timeout | TimeoutError | ConnectionError)
