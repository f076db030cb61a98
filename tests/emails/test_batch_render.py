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


@pytest.fixture
def shouting_template(tmp_path, settings):
    """A template that does more with a per-recipient value than print it (`|upper`)."""
    from emails import registry, render

    folder = tmp_path / "emails" / "tests" / "shout"
    folder.mkdir(parents=True)
    (folder / "body.html").write_text("<html><body><p>{{ unsubscribe_url|upper }}</p></body></html>")
    (folder / "body.txt").write_text("{{ unsubscribe_url|upper }}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    render._text_templates.cache_clear()
    registry.register_template(
        registry.EmailTemplate(key="tests/shout", subject="Hey", category="product-updates")
    )
    yield "tests/shout"
    registry._templates.pop("tests/shout")
    render._text_templates.cache_clear()


@time_machine.travel("2026-12-02 10:00:00Z", tick=False)
def test_a_template_that_transforms_a_recipients_link_is_rendered_for_each_recipient(shouting_template):
    render = RenderOnce()
    for i in range(2):
        person = Contact.objects.create(user_id=f"s{i}", email=f"s{i}@example.com")
        log = _log(person)
        log.template = shouting_template
        alone = email_message_build(log=log, contact=person).message
        batched = email_message_build(log=log, contact=person, render=render).message
        assert (batched.body, batched.alternatives) == (alone.body, alone.alternatives)
        assert batched.body.startswith("HTTP") and "/UNSUBSCRIBE/" in batched.body  # the real link, shouted
    assert list(render._shapes.values()) == [None]  # the stand-ins did not come through as they went in
