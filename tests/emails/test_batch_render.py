"""A batch's messages are those a single send builds: the template rendered once for the batch,
with each recipient's consent links and email id filled in, gives the same subject, text, HTML and
headers as rendering it for that recipient alone."""

from __future__ import annotations

import uuid

import pytest
import time_machine
from django.utils import timezone

from broadcasts.templates import ANNOUNCEMENT
from contacts.models import Contact
from emails.batch import RenderOnce
from emails.message import email_message_build
from emails.models import EmailLog

pytestmark = pytest.mark.django_db
PROPS = {"headline": "Dark mode & more", "body": "Try <it>.", "cta_url": "https://example.com/x?a=1&b=2"}


def _log(contact: Contact) -> EmailLog:
    return EmailLog(
        id=uuid.uuid4(), to_email=contact.email, contact=contact, template=ANNOUNCEMENT,
        subject="Dark mode", category="product-updates", props=PROPS, status="queued",
        idempotency_key=f"k:{contact.pk}", created_at=timezone.now(),
    )  # fmt: skip


@time_machine.travel("2026-12-02 10:00:00Z", tick=False)  # the signed links carry the moment
def test_a_message_rendered_once_for_the_batch_is_the_one_rendered_alone():
    people = [Contact.objects.create(user_id=f"u{i}", email=f"o'brien{i}@example.com") for i in range(3)]
    render = RenderOnce()
    for person in people:
        log = _log(person)
        alone = email_message_build(log=log, contact=person).message
        batched = email_message_build(log=log, contact=person, render=render).message
        assert (batched.subject, batched.body, batched.alternatives) == (
            alone.subject,
            alone.body,
            alone.alternatives,
        )
        headers = {k: v for k, v in batched.extra_headers.items() if k != "Message-ID"}
        assert headers == {k: v for k, v in alone.extra_headers.items() if k != "Message-ID"}
        assert str(log.id) in batched.alternatives[0][0]  # its own email id, not a stand-in
        assert "hogsendslot" not in batched.body + batched.alternatives[0][0]
    assert len(render._shapes) == 1  # rendered once (twice, to check the stand-ins) for all three
