"""Single sends render a template once per props and fill in each email's own links."""

from __future__ import annotations

import pytest

from emails import delivery
from emails.models import EmailLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_renderer():
    delivery._single_render = None
    yield
    delivery._single_render = None


def test_sends_of_one_template_to_many_contacts_render_it_once_each_with_its_own_links(
    fresh_renderer, smtp_server, public_url, make_contact, send_welcome
):
    ada, bob = make_contact(email="ada@example.com"), make_contact(email="bob@example.com")

    logs = [send_welcome(ada), send_welcome(bob)]

    assert [log.status for log in logs] == [EmailLog.Status.SENT] * 2
    assert delivery.single_render().shapes == 1
    links = []
    for log, contact in zip(logs, (ada, bob), strict=True):
        (message,) = [m for m in smtp_server.messages if m["To"] == contact.email]
        html = message.get_body(preferencelist=("html",)).get_content()
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert message["X-Hogsend-Email-Id"] == str(log.id)
        unsubscribe = message["List-Unsubscribe"].strip()[1:-1]  # this contact's, from the headers
        assert unsubscribe in html and unsubscribe in text
        links.append(unsubscribe)
    assert links[0] != links[1]


def test_other_props_are_another_rendering(
    fresh_renderer, smtp_server, public_url, make_contact, send_welcome
):
    send_welcome(make_contact(), props={"first_name": "Ada"})
    send_welcome(make_contact(), props={"first_name": "Grace"})

    assert delivery.single_render().shapes == 2
    assert [
        "Welcome, Ada!" in m.get_body(preferencelist=("plain",)).get_content() for m in smtp_server.messages
    ] == [
        True,
        False,
    ]
