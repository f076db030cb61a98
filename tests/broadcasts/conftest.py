from __future__ import annotations

from typing import Any

import pytest

from contacts.models import Contact
from tests.emails.conftest import SmtpInbox, free_port


@pytest.fixture
def smtp_server(settings):
    from aiosmtpd.controller import Controller

    inbox = SmtpInbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", inbox.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


def recipients_of(inbox: SmtpInbox) -> list[str]:
    return sorted(address for envelope in inbox.envelopes for address in envelope.rcpt_tos)


@pytest.fixture
def people(db):
    """`people(n, **properties)`: n contacts with these properties, emails person<i>@example.com."""
    counter = iter(range(1, 1_000_000))

    def make(n: int = 1, **fields: Any) -> list[Contact]:
        made = []
        for _ in range(n):
            i = next(counter)
            properties = fields.pop("properties", None) or {}
            made.append(
                Contact.objects.create(
                    user_id=f"user_{i}", email=f"person{i}@example.com", properties=properties, **fields
                )
            )
            fields.setdefault("properties", properties)
        return made

    return make


ANNOUNCEMENT_PROPS = {"headline": "Dark mode is here", "body": "Try it.", "cta_url": "https://example.com/x"}


@pytest.fixture
def admin(client, db):
    from contacts.services import api_key_create
    from tests.admin_api.conftest import Client

    _, secret = api_key_create(name="ops", scopes=["admin"])
    return Client(client, secret)


@pytest.fixture
def ingest_only(client, db):
    from contacts.services import api_key_create
    from tests.admin_api.conftest import Client

    _, secret = api_key_create(name="app", scopes=["ingest", "read"])
    return Client(client, secret)


@pytest.fixture
def define():
    """`define(segment, ...)`: segments registered for this test only."""
    from audiences.segments import registry

    added = []

    def register(*segments) -> None:
        registry.register(*segments)
        added.extend(segments)

    yield register
    for segment in reversed(added):
        registry.unregister(segment.id)
