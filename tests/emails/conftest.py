from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from contacts.models import Contact
from emails.services import email_send


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpInbox:
    """A real SMTP server (aiosmtpd) on loopback; keeps every message it receives, raw and parsed."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.envelopes: list[Any] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.original_content or envelope.content)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.raw]


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpInbox]:
    from aiosmtpd.controller import Controller

    inbox = SmtpInbox()
    port = inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def public_url(settings) -> str:
    settings.PUBLIC_BASE_URL = "https://mail.hogsend.test"
    return settings.PUBLIC_BASE_URL


@pytest.fixture
def make_contact(db):
    counter = iter(range(1, 10_000))

    def make(**fields: Any) -> Contact:
        n = next(counter)
        fields.setdefault("user_id", f"user_{n}")
        fields.setdefault("email", f"person{n}@example.com")
        return Contact.objects.create(**fields)

    return make


@pytest.fixture
def send_welcome():
    """A journey-category send of the shipped welcome email to a contact."""
    counter = iter(range(1, 10_000))

    def send(contact: Contact, **overrides: Any):
        kwargs: dict[str, Any] = {
            "to": contact.email,
            "template": "activation/welcome",
            "props": {"first_name": "Ada"},
            "user_id": contact.user_id,
            "idempotency_key": f"test-send-{next(counter)}-{contact.user_id}",
        }
        kwargs.update(overrides)
        return email_send(**kwargs)

    return send
