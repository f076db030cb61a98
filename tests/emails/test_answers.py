"""Semantic links and hosted answers: a click that becomes one answer event, and nothing else."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import time_machine
from django.template import engines
from django.utils import timezone

from contacts.addresses import EmailError
from contacts.models import Event
from emails.answers import ANSWER_EVENT, answer_token_make
from emails.render import email_render
from emails.services import email_send

pytestmark = pytest.mark.django_db
BASE = "https://mail.hogsend.test"
TEMPLATE = "support/did-it-fix"  # declares the question "fixed" with the choices yes / no


@pytest.fixture
def asked(make_contact, public_url, mailoutbox):
    """A sent "did this fix it?" email and its three answer links, as the text part shows them."""
    contact = make_contact(user_id="cust-1", email="cust@example.com")
    log = email_send(
        to=contact.email,
        template=TEMPLATE,
        props={"ticket_id": "4711", "ticket_subject": "Export stuck"},
        user_id=contact.user_id,
        idempotency_key="ask-4711",
    )
    text = mailoutbox[0].body
    links = re.findall(rf"{re.escape(BASE)}(/e/a/[^\s]+/)", text)
    assert len(links) == 3, text
    yes, no, page = links
    return {
        "log": log,
        "contact": contact,
        "yes": yes,
        "no": no,
        "page": page,
        "html": mailoutbox[0].alternatives[0][0],
    }


def answers():
    return list(Event.objects.filter(name=ANSWER_EVENT).order_by("received_at"))


def csrf_post(client, path, data):
    """POST the way the page's own form does: with the CSRF token its GET set (if it showed a form)."""
    client.get(path)
    token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    return client.post(path, {**data, "csrfmiddlewaretoken": token})


def test_the_email_carries_signed_yes_no_and_hosted_answer_links(asked):
    assert len({asked["yes"], asked["no"], asked["page"]}) == 3
    # In the HTML part they are ordinary links (click-tracked like any other).
    assert asked["html"].count(f'href="{BASE}/e/c/') >= 3


def test_a_get_only_shows_a_confirm_page_and_records_nothing(client, asked):
    page = client.get(asked["no"])
    head = client.head(asked["no"])

    assert page.status_code == 200 and head.status_code == 200
    body = page.content.decode()
    assert "Did this fix your problem?" in body and "No, not yet" in body
    assert "<form" in body and "Send my answer" in body
    assert page["Referrer-Policy"] == "same-origin" and "no-cache" in page["Cache-Control"]
    assert answers() == []


def test_confirming_a_link_stores_one_answer_event_with_the_answer_and_the_text(client, asked):
    response = csrf_post(client, asked["no"], {"text": "Still stuck at 99%"})

    assert response.status_code == 200
    assert "Thanks — we have your answer" in response.content.decode()
    (event,) = answers()
    assert event.contact_id == asked["contact"].pk
    assert event.source == Event.Source.SYSTEM
    assert event.properties == {
        "question": "fixed",
        "answer": "no",
        "text": "Still stuck at 99%",
        "email_id": str(asked["log"].pk),
        "template": TEMPLATE,
    }


def test_a_second_click_or_submission_changes_nothing(client, asked):
    csrf_post(client, asked["yes"], {"text": ""})
    again = csrf_post(client, asked["yes"], {"text": "really"})
    other = csrf_post(client, asked["no"], {"text": "changed my mind"})
    revisit = client.get(asked["page"])

    (event,) = answers()
    assert event.properties["answer"] == "yes" and event.properties["text"] == ""
    for response in (again, other, revisit):
        assert response.status_code == 200
        assert "already answered" in response.content.decode()
        assert "Yes, it&#x27;s fixed" in response.content.decode()


def test_the_hosted_page_offers_the_choices_and_takes_free_text(client, asked):
    form = client.get(asked["page"]).content.decode()
    assert 'type="radio" name="answer" value="yes"' in form and 'value="no"' in form

    response = csrf_post(client, asked["page"], {"answer": "no", "text": "It broke again after the update"})

    assert response.status_code == 200
    (event,) = answers()
    assert (event.properties["answer"], event.properties["text"]) == ("no", "It broke again after the update")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "no choice made"}, "Choose one of: Yes, it&#x27;s fixed, No, not yet."),
        ({"answer": "maybe", "text": ""}, "Choose one of"),
        ({"answer": "yes", "text": "x" * 2001}, "under 2000 characters"),
        ({"answer": "yes", "text": "nul\x00byte"}, "NUL"),
    ],
)
def test_a_bad_submission_is_a_400_that_says_what_to_change_and_stores_nothing(client, asked, data, message):
    response = csrf_post(client, asked["page"], data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert "<form" in response.content.decode()  # the page again, to fix and resend
    assert answers() == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda path: path[:12] + ("A" if path[12] != "A" else "B") + path[13:],  # payload changed
        lambda path: path[:-6] + "AAAAA/",  # signature changed
        lambda path: "/e/a/not-a-token/",
    ],
    ids=["payload", "signature", "garbage"],
)
def test_a_tampered_link_gets_a_clear_page_and_no_event(client, asked, mangle):
    path = mangle(asked["yes"])
    shown = client.get(path)
    posted = client.post(path, {"text": "hi"})

    for response in (shown, posted):
        assert response.status_code == 400
        assert "This link doesn&#x27;t work" in response.content.decode()
        assert "Nothing has been recorded" in response.content.decode()
    assert answers() == []


def test_an_answer_for_a_different_question_cannot_be_forged_without_the_key(client, asked):
    forged = (
        "/e/a/" + answer_token_make(email_id=asked["log"].pk, question="fixed", answer="no")[:-3] + "abc/"
    )
    assert client.get(forged).status_code == 400


def test_an_expired_link_is_a_410_and_stores_nothing(client, asked, settings):
    settings.ANSWER_LINK_MAX_AGE_DAYS = 30
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        response = csrf_post(client, asked["yes"], {"text": ""})

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert answers() == []


def test_a_link_of_an_erased_contact_answers_nothing(client, asked):
    contact = asked["contact"]
    contact.erased_at = timezone.now()
    contact.save(update_fields=["erased_at"])

    assert client.get(asked["yes"]).status_code == 400
    assert answers() == []


def test_without_the_csrf_token_a_post_is_refused(client, asked):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post(asked["yes"], {"text": ""}).status_code == 403
    assert answers() == []


def test_any_template_can_ask_a_free_text_question_without_declaring_it(client, make_contact, public_url):
    """An undeclared question: the page shows the email's subject and takes free text only."""
    contact = make_contact(user_id="free-1")
    log = email_send(
        to=contact.email, template="activation/welcome", user_id=contact.user_id, idempotency_key="free-1"
    )
    rendered = engines["django"].from_string('{% load answers %}{% answer_page_url "feedback" %}')
    url = rendered.render({"hogsend_email_id": str(log.pk)})
    path = url.removeprefix(BASE)

    form = client.get(path).content.decode()
    assert html.escape(log.subject) in form and 'type="radio"' not in form
    assert csrf_post(client, path, {"text": ""}).status_code == 400  # free text is the answer
    assert csrf_post(client, path, {"text": "More reports, please"}).status_code == 200
    (event,) = answers()
    assert (event.properties["question"], event.properties["answer"]) == ("feedback", "")
    assert event.properties["text"] == "More reports, please"


def test_a_preview_renders_harmless_placeholders_and_a_bad_key_is_an_email_error():
    preview = email_render(template=TEMPLATE, props={"ticket_id": "1"})
    assert "#answer-fixed-yes" in preview.text and "/e/a/" not in preview.text

    bad = engines["django"].from_string('{% load answers %}{% answer_link "Fixed It" "yes" %}')
    with pytest.raises(EmailError, match="question 'Fixed It'"):
        bad.render({"hogsend_email_id": "00000000-0000-0000-0000-000000000001"})


def test_text_no_page_can_deliver_but_the_database_cannot_store_is_refused_before_ingest(client, asked):
    from emails.answers import AnswerInvalid, answer_record, answer_request_read

    ask = answer_request_read(token=asked["yes"].removeprefix("/e/a/").rstrip("/"))
    with pytest.raises(AnswerInvalid, match="unpaired surrogate"):
        answer_record(request=ask, answer=None, text="broken \ud800 text")
    assert answers() == []
