"""emails.wire gives the SMTP backend's own bytes and envelope: a batch's message filled into its
shape is byte for byte what `message().as_bytes()` generates (given the same Date and boundary,
the two values that differ from one generation to the next anyway), and a message it cannot
shape is left to the normal path."""

from __future__ import annotations

import email
import email.policy
import re
import uuid

import pytest
import time_machine
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address
from django.utils import timezone

from broadcasts.templates import ANNOUNCEMENT
from contacts.models import Contact
from emails import wire
from emails.message import email_message_build
from emails.models import EmailLog
from emails.render import RenderOnce

pytestmark = pytest.mark.django_db
PROPS = {"headline": "Dark mode & more", "body": "Try <it>.", "cta_url": "https://example.com/x?a=1&b=2"}


def _normal(message: EmailMultiAlternatives) -> bytes:
    return message.message().as_bytes(linesep="\r\n")


def _shaped(shapes: wire.WireShapes, message: EmailMultiAlternatives, like: bytes) -> bytes | None:
    """The shaped bytes with the Date and boundary `like` (the normal path's) has."""
    values = wire._values(message)
    if values is None:
        return None
    values["date"] = re.search(rb"\r\nDate: ([^\r]*)\r\n", like).group(1).decode()
    values["boundary"] = re.search(rb'boundary="([^"]*)"', like).group(1).decode()
    key = wire._key(message, values)
    if key not in shapes._shapes:
        shapes._shapes[key] = wire._shape(message, values)
    shape = shapes._shapes[key]
    return None if shape is None else wire._fill(shape, values)


def _log(contact: Contact, props: dict) -> EmailLog:
    return EmailLog(
        id=uuid.uuid4(), to_email=contact.email, contact=contact, template=ANNOUNCEMENT,
        subject="Dark mode", category="product-updates", props=props, status="queued",
        idempotency_key=f"k:{contact.pk}", created_at=timezone.now(),
    )  # fmt: skip


@time_machine.travel("2026-12-02 10:00:00Z", tick=False)
@pytest.mark.parametrize(
    "props",
    [PROPS, {**PROPS, "headline": "Mode sombre — enfin", "body": "Ça marche.\n\n. a dot line\r\nand CRLF"}],
    ids=["ascii", "non-ascii"],
)
def test_a_batch_message_filled_into_its_shape_is_the_normal_paths_bytes(props):
    render, shapes = RenderOnce(), wire.WireShapes()
    for i in range(4):
        person = Contact.objects.create(user_id=f"u{i}", email=f"o'brien.{i}{'x' * i}@example.com")
        message = email_message_build(log=_log(person, props), contact=person, render=render).message
        normal = _normal(message)
        shaped = _shaped(shapes, message, like=normal)
        assert shaped == normal
        sender, recipients = shapes.envelope(message)
        assert sender == sanitize_address(message.from_email, "utf-8")
        assert recipients == [sanitize_address(person.email, "utf-8")]
    assert len(shapes._shapes) == 1 and None not in shapes._shapes.values()
    parsed = email.message_from_bytes(shapes.bytes_for(message), policy=email.policy.default)
    assert parsed["To"] == person.email and parsed.get_body(("html",)).get_content().count(
        str(message.extra_headers["X-Hogsend-Email-Id"])
    )


def _message(**overrides) -> EmailMultiAlternatives:
    fields = {
        "subject": "Hi",
        "body": "text\n",
        "from_email": "Hogsend <hello@example.com>",
        "to": ["ada@example.com"],
        "headers": {"Message-ID": "<1@example.com>", "List-Unsubscribe": "<https://example.com/u/abc:def/>"},
    }
    fields.update(overrides)
    message = EmailMultiAlternatives(**fields)
    message.attach_alternative("<p>html</p>", "text/html")
    return message


@pytest.mark.parametrize(
    "message",
    [
        _message(body="x" * 1200 + "\n"),  # a line past 998 bytes: Django sends it quoted-printable
        _message(to=["José <jose@example.com>"]),  # an address the generator encodes
        _message(headers={"X-Note": "two words, folded maybe " * 5}),  # a value it may fold
        _message(to=["ada@example.com", "bob@example.com"]),
        _message(cc=["bob@example.com"]),
    ],
    ids=["long-line", "non-ascii-address", "foldable-header", "two-recipients", "cc"],
)
def test_a_message_the_shape_might_not_pass_through_is_left_to_the_normal_path(message):
    assert wire.WireShapes().bytes_for(message) is None


def test_the_envelope_is_the_backends_for_any_address():
    shapes = wire.WireShapes()
    for address in ["ada@example.com", "o'brien@example.com", "José <jose@exämple.com>", '"a b"@example.com']:
        message = _message(to=[address])
        assert shapes.envelope(message)[1] == [sanitize_address(address, "utf-8")]


def test_a_shaped_message_parses_as_the_normal_one():
    message = _message(body="Ça\n.dot\n", subject="Grüße")
    normal, shapes = _normal(message), wire.WireShapes()
    shaped = shapes.bytes_for(message)
    assert shaped is not None and shaped != normal  # its own Date and boundary
    one, two = (email.message_from_bytes(b, policy=email.policy.default) for b in (normal, shaped))
    assert [(k, v) for k, v in one.items() if k not in ("Date", "Content-Type")] == [
        (k, v) for k, v in two.items() if k not in ("Date", "Content-Type")
    ]
    assert [p.get_content() for p in one.iter_parts()] == [p.get_content() for p in two.iter_parts()]


@pytest.mark.parametrize("name", ["List-Unsubscribe", "X-Hogsend-Email-Id"])
def test_a_header_value_of_any_length_is_placed_as_the_generator_places_it(name):
    """compat32 moves a value that does not fit beside its name to a line of its own."""
    shapes = wire.WireShapes()
    for length in range(1, 160):
        message = _message(headers={"Message-ID": "<1@example.com>", name: "<" + "u" * length + ">"})
        normal = _normal(message)
        assert _shaped(shapes, message, like=normal) == normal, length
