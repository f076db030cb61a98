"""The provider is called with no transaction open: the row is committed `sending` first, the
outcome recorded at once after. A send whose process died before its provider call is delivered
by the repeat of that send."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone

from contacts.models import AuditEntry
from emails.models import EmailLog
from emails.services import email_send

pytestmark = pytest.mark.django_db(transaction=True)
Status = EmailLog.Status


def seen_from_another_connection(query) -> Any:
    """Run an ORM query on a fresh connection (a new thread): it sees only what is committed."""
    from django.db import connection

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = query()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return box["value"]


@pytest.fixture
def watching_smtp(smtp_server):
    """The loopback SMTP server, noting at DATA what the rest of the world sees of the email log."""
    seen: list[dict[str, Any]] = []
    accept = smtp_server.handle_DATA

    async def handle_DATA(server, session, envelope):
        email_id = envelope.content.split(b"X-Hogsend-Email-Id: ", 1)[1].split(b"\r\n", 1)[0].decode()

        def committed() -> dict[str, Any]:
            row = EmailLog.objects.select_for_update(nowait=True).filter(pk=email_id)
            try:
                with transaction.atomic():  # NOWAIT: fails while the sender holds the row lock
                    log = row.values("status", "attempts").first()
            except OperationalError:
                return {"status": "locked by the sender"}
            audited = AuditEntry.objects.filter(action="template.test_send").exists()
            return {**(log or {}), "audited": audited}

        seen.append(seen_from_another_connection(committed))
        return await accept(server, session, envelope)

    smtp_server.handle_DATA = handle_DATA
    smtp_server.seen = seen
    return smtp_server


def test_the_provider_call_happens_after_the_row_is_committed_as_sending_with_no_lock_held(
    watching_smtp, make_contact, send_welcome
):
    log = send_welcome(make_contact())

    assert watching_smtp.seen == [{"status": Status.SENDING, "attempts": 1, "audited": False}]
    assert log.status == Status.SENT
    log.refresh_from_db()
    assert (log.status, log.attempts) == (Status.SENT, 1)
    assert log.sent_at is not None


def test_a_studio_test_send_is_audited_and_committed_before_the_provider_is_called(watching_smtp):
    from django.contrib.auth.models import User

    from emails.actions import template_test_send

    operator = User.objects.create_superuser("ops", "ops@example.com", "pw")

    log = template_test_send(actor=operator, template="activation/welcome", to="ops@example.com")

    assert watching_smtp.seen == [{"status": Status.SENDING, "attempts": 1, "audited": True}]
    assert log.status == Status.SENT


def test_a_repeat_of_a_send_whose_process_died_before_the_provider_call_delivers_it(
    smtp_server, make_contact
):
    contact = make_contact()
    kwargs = dict(to=contact.email, template="activation/welcome", user_id=contact.user_id)
    left = EmailLog.objects.create(  # committed queued, then the process died
        to_email=contact.email,
        contact=contact,
        template="activation/welcome",
        subject="Welcome",
        category="journey",
        props={"first_name": "Ada"},
        idempotency_key="k",
        created_at=timezone.now(),
    )

    again = email_send(**kwargs, props={"first_name": "Ada"}, idempotency_key="k")

    assert (again.pk, again.status) == (left.pk, Status.SENT)
    assert len(smtp_server.messages) == 1
    assert email_send(**kwargs, idempotency_key="k").status == Status.SENT
    assert len(smtp_server.messages) == 1  # and a third repeat sends nothing
