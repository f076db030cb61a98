"""Single sends on a thread share one provider connection, and survive the server dropping it."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.controller import Controller

from emails.connections import provider_connection_close
from emails.models import EmailLog
from tests.emails.conftest import SmtpInbox

pytestmark = pytest.mark.django_db


class SessionCountingInbox(SmtpInbox):
    """Also notes the client's address of each message: one address per SMTP session."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def inbox(smtp_server):
    """A loopback server that counts sessions, started and stopped by the test (to drop them)."""
    counting = SessionCountingInbox()
    counting.port = smtp_server.port
    servers = {"controller": None}

    def start() -> None:
        controller = Controller(counting, hostname="127.0.0.1", port=counting.port)
        controller.start()
        servers["controller"] = controller

    def stop() -> None:
        servers["controller"].stop()

    counting.start, counting.stop = start, stop  # type: ignore[attr-defined]
    yield counting
    provider_connection_close()
    if servers["controller"] is not None:
        stop()


@pytest.fixture
def smtp_server(settings):
    """The emails conftest's settings for a loopback SMTP server, the server left to `inbox`."""
    from tests.emails.conftest import free_port

    inbox = SmtpInbox()
    inbox.port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = inbox.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    provider_connection_close()
    return inbox


def test_single_sends_on_one_thread_share_one_smtp_session(inbox, make_contact, send_welcome):
    inbox.start()

    logs = [send_welcome(make_contact()) for _ in range(3)]

    assert [log.status for log in logs] == [EmailLog.Status.SENT] * 3
    assert len(inbox.raw) == 3
    assert len(set(inbox.peers)) == 1


def test_a_session_the_server_dropped_is_replaced_and_the_email_sent_once(inbox, make_contact, send_welcome):
    inbox.start()
    first = send_welcome(make_contact())
    inbox.stop()  # the server goes away while the kept connection sits idle
    inbox.start()

    second = send_welcome(make_contact())

    assert (first.status, second.status) == (EmailLog.Status.SENT, EmailLog.Status.SENT)
    assert len(inbox.raw) == 2
    assert len(set(inbox.peers)) == 2
    second.refresh_from_db()
    assert (second.status, second.attempts) == (EmailLog.Status.SENT, 1)


def test_a_connection_idle_too_long_is_not_reused(inbox, make_contact, send_welcome, settings):
    settings.EMAIL_CONNECTION_MAX_IDLE_SECONDS = 0
    inbox.start()

    send_welcome(make_contact())
    send_welcome(make_contact())

    assert len(set(inbox.peers)) == 2


def test_a_connection_is_replaced_after_its_message_limit(inbox, make_contact, send_welcome, settings):
    settings.EMAIL_CONNECTION_MAX_MESSAGES = 2
    inbox.start()

    for _ in range(5):
        send_welcome(make_contact())

    assert len(inbox.raw) == 5
    assert len(set(inbox.peers)) == 3
