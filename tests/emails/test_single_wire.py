"""Single sends on Django's SMTP backend put each message on the wire from its shape (emails.wire,
kept for the process: emails.delivery.single_wire): the bytes and envelope the backend's own send
gives, over the thread's kept session, and the normal path for a message emails.wire leaves to it."""

from __future__ import annotations

import email.generator

import pytest
import time_machine
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import EmailMessage

from emails import delivery, wire
from emails import message as message_builder
from emails.connections import provider_connection_close
from emails.models import EmailLog
from tests.emails import test_provider_connections

pytestmark = pytest.mark.django_db
# The loopback server the test starts and stops (to drop its sessions), counting sessions.
inbox, smtp_server = test_provider_connections.inbox, test_provider_connections.smtp_server
BOUNDARY = "===============1234567890123456789=="


@pytest.fixture
def fresh_wire():
    delivery._single_wire = None
    provider_connection_close()
    yield
    delivery._single_wire = None
    provider_connection_close()


@pytest.fixture
def generations(monkeypatch):
    """How many times a message went through the email package's generator (`message()`)."""
    calls = []
    generate = EmailMessage.message

    def counted(self, *args, **kwargs):
        calls.append(self)
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "message", counted)
    return calls


@pytest.fixture
def built(monkeypatch):
    """Every message the builder made, in order."""
    made = []
    build = message_builder.email_message_build

    def keep(**kwargs):
        made.append(build(**kwargs))
        return made[-1]

    monkeypatch.setattr(delivery, "email_message_build", keep)
    return made


@time_machine.travel("2026-12-02 10:00:00Z", tick=False)
def test_a_single_send_goes_out_from_its_shape_as_the_backends_own_bytes(
    fresh_wire, inbox, public_url, make_contact, send_welcome, generations, built, monkeypatch
):
    # The Date (time stands still) and the boundary fixed, the two values that differ per generation.
    monkeypatch.setattr(wire, "_boundary", lambda: BOUNDARY)
    monkeypatch.setattr(
        email.generator.Generator, "_make_boundary", classmethod(lambda cls, text=None: BOUNDARY)
    )
    inbox.start()
    send_welcome(make_contact(email="ada@example.com"))  # generates the shape
    generated = len(generations)

    log = send_welcome(make_contact(email="bob@example.com"))

    assert log.status == EmailLog.Status.SENT
    assert len(generations) == generated  # filled into its shape, not generated
    assert delivery.single_wire().shapes == 1
    assert len(set(inbox.peers)) == 1  # on the thread's kept session
    # The same message by the backend's own send: the same bytes, the same envelope.
    backend = get_connection()
    backend.send_messages([built[-1].message])
    assert len(generations) == generated + 1
    assert inbox.raw[2] == inbox.raw[1]
    assert (inbox.envelopes[2].mail_from, inbox.envelopes[2].rcpt_tos) == (
        inbox.envelopes[1].mail_from,
        inbox.envelopes[1].rcpt_tos,
    )
    assert inbox.messages[1]["X-Hogsend-Email-Id"] == str(log.id)


def test_a_message_only_the_normal_path_generates_goes_out_by_the_backends_send(
    fresh_wire, inbox, public_url, make_contact, send_welcome, generations
):
    inbox.start()
    # A body line past 998 bytes: Django sends that part quoted-printable.
    log = send_welcome(make_contact(), props={"first_name": "A" * 1200})

    assert log.status == EmailLog.Status.SENT
    assert len(generations) == 1  # the backend's own generation, no shape made
    assert delivery.single_wire().shapes == 0
    assert "A" * 1200 in inbox.messages[0].get_body(preferencelist=("plain",)).get_content()


def test_a_session_dropped_under_the_wire_path_is_replaced_and_the_email_sent_once(
    fresh_wire, inbox, public_url, make_contact, send_welcome, generations
):
    inbox.start()
    send_welcome(make_contact())
    generated = len(generations)
    inbox.stop()  # the server goes away while the kept connection sits idle
    inbox.start()

    log = send_welcome(make_contact())

    assert len(generations) == generated  # the wire path, on the new session
    assert len(inbox.raw) == 2 and len(set(inbox.peers)) == 2
    log.refresh_from_db()
    assert (log.status, log.attempts) == (EmailLog.Status.SENT, 1)


def _message(subject: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body="text\n",
        from_email="hello@example.com",
        to=["ada@example.com"],
        headers={"Message-ID": "<1@example.com>"},  # one Django would make differs per generation
    )
    message.attach_alternative("<p>html</p>", "text/html")
    return message


def test_another_backend_or_a_closed_session_is_left_to_the_backends_send(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert not wire.smtp_wire_send(get_connection(), _message("Hi"), shapes=wire.WireShapes())
    smtp = get_connection("django.core.mail.backends.smtp.EmailBackend")  # not opened
    assert not wire.smtp_wire_send(smtp, _message("Hi"), shapes=wire.WireShapes())


def test_the_kept_shapes_are_bounded():
    shapes = wire.WireShapes(max_shapes=2)
    for subject in ["one", "two", "three"]:
        assert shapes.bytes_for(_message(subject)) is not None
    assert shapes.shapes == 1
