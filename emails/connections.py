"""One provider connection per thread, kept open between single sends.

A connection per email costs a TCP (and TLS) handshake, EHLO (and AUTH) and QUIT each time, on
our side and the provider's. The journey worker's database threads and Celery's workers each send
one email at a time, so each thread keeps the Django email backend it opened and reuses it while
it is fresh: used within `EMAIL_CONNECTION_MAX_IDLE_SECONDS`, fewer than
`EMAIL_CONNECTION_MAX_MESSAGES` sent on it, and the email settings unchanged since it opened.
The caller still records each message's outcome right after its provider call (emails.delivery);
nothing here is inside a transaction.
"""

from __future__ import annotations

import smtplib
import threading
import time
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.core.signals import setting_changed
from django.dispatch import receiver

from emails.wire import WireShapes, smtp_wire_send

_kept = threading.local()
# Bumped when an email setting changes (tests, mostly): every thread's kept connection is then
# stale and is closed at its next use.
_generation = 0


@receiver(setting_changed)
def _email_settings_changed(*, setting: str, **kwargs: Any) -> None:
    global _generation
    if setting.startswith("EMAIL_") or setting == "ANYMAIL":
        _generation += 1


def _close(backend: Any) -> None:
    try:
        backend.close()
    except Exception:  # a connection already broken has nothing left to close cleanly
        pass


def _fresh(now: float) -> Any | None:
    """This thread's kept backend if it may be used again, else None (closing a stale one)."""
    backend = getattr(_kept, "backend", None)
    if backend is None:
        return None
    if (
        _kept.generation == _generation
        and now - _kept.used_at <= settings.EMAIL_CONNECTION_MAX_IDLE_SECONDS
        and _kept.sent < settings.EMAIL_CONNECTION_MAX_MESSAGES
    ):
        return backend
    provider_connection_close()
    return None


def _open() -> Any:
    backend = get_connection()
    backend.open()  # opened here, so send_messages leaves it open for the next message
    _kept.backend, _kept.generation, _kept.sent, _kept.used_at = backend, _generation, 0, time.monotonic()
    return backend


def provider_send(message: Any, *, wire: WireShapes | None = None) -> None:
    """Hand one message to the provider on this thread's kept connection.

    1. Reuse the kept connection if it is fresh; otherwise open one (and keep it).
    2. Send: on Django's SMTP backend, with `wire`, the bytes the backend would send (emails.wire:
       generated once per shape, this message's values filled in) straight to its session; any
       other backend, or a message emails.wire leaves to the normal path, by the backend's own
       send. Either way, a reused SMTP connection the server dropped while it sat idle fails at
       its first command, before any of the message went out: it is replaced and the message
       sent once on the new one.
    3. Any other failure closes the connection (the next send opens a new one) and is raised
       for the caller to record.
    """
    now = time.monotonic()
    backend = _fresh(now)
    reused = backend is not None
    if backend is None:
        backend = _open()
    try:
        try:
            _send(backend, message, wire=wire)
        except smtplib.SMTPServerDisconnected:
            if not reused:
                raise
            provider_connection_close()
            backend = _open()
            _send(backend, message, wire=wire)
    except Exception:
        provider_connection_close()
        raise
    _kept.sent += 1
    _kept.used_at = time.monotonic()


def _send(backend: Any, message: Any, *, wire: WireShapes | None) -> None:
    if wire is None or not smtp_wire_send(backend, message, shapes=wire):
        backend.send_messages([message])


def provider_connection_close() -> None:
    """Close this thread's kept connection, if any."""
    backend = getattr(_kept, "backend", None)
    _kept.backend = None
    if backend is not None:
        _close(backend)
