"""Semantic links in a real headless Chromium: the person answers, a prefetcher does not."""

from __future__ import annotations

import re

import pytest

from contacts.models import Contact, Event
from emails.services import email_send

pytestmark = [pytest.mark.browser]


@pytest.fixture
def email(transactional_db, live_server, settings, mailoutbox):
    """A "did this fix it?" email whose links point at the live server: (html links, text links)."""
    settings.PUBLIC_BASE_URL = live_server.url
    contact = Contact.objects.create(user_id="u_answers", email="lin@example.com")
    email_send(
        to=contact.email,
        template="support/did-it-fix",
        props={"ticket_id": "4711", "ticket_subject": "Export stuck"},
        user_id=contact.user_id,
        idempotency_key="browser-ask",
    )
    (message,) = mailoutbox
    html_links = re.findall(r'href="([^"]+/e/c/[^"]+)"', message.alternatives[0][0])
    text_links = re.findall(r"(https?://\S+/e/a/\S+/)", message.body)
    return html_links, text_links


def answers():
    return list(Event.objects.filter(name="email.answered"))


def test_a_person_clicks_no_adds_a_comment_and_a_second_click_changes_nothing(page, email, artifacts_dir):
    html_links, _ = email
    yes, no = html_links[0], html_links[1]  # the tracked links, as a mail client opens them

    page.goto(no)
    assert page.get_by_role("heading", name="Did this fix your problem?").is_visible()
    assert page.get_by_text("Your answer: No, not yet").is_visible()
    page.screenshot(path=str(artifacts_dir / "answer-confirm.png"), full_page=True)
    assert answers() == []  # opening the link answered nothing

    page.get_by_label("Anything to add? (optional)").fill("Still stuck at 99%")
    page.get_by_role("button", name="Send my answer").click()
    page.get_by_role("heading", name="Thanks — we have your answer").wait_for()
    page.screenshot(path=str(artifacts_dir / "answer-thanks.png"), full_page=True)
    (event,) = answers()
    assert (event.properties["answer"], event.properties["text"]) == ("no", "Still stuck at 99%")

    page.goto(yes)
    assert page.get_by_role("heading", name="You've already answered").is_visible()
    assert len(answers()) == 1


def test_the_hosted_page_takes_a_choice_and_free_text_and_says_what_is_missing(page, email):
    _, text_links = email
    hosted = text_links[2]

    page.goto(hosted)
    page.get_by_label("Anything to add? (optional)").fill("Totals are wrong now")
    page.get_by_role("button", name="Send my answer").click()
    assert page.get_by_role("alert").inner_text().startswith("Choose one of")
    assert page.get_by_label("Anything to add? (optional)").input_value() == "Totals are wrong now"
    assert answers() == []

    page.get_by_label("No, not yet").check()
    page.get_by_role("button", name="Send my answer").click()
    page.get_by_role("heading", name="Thanks — we have your answer").wait_for()
    (event,) = answers()
    assert (event.properties["answer"], event.properties["text"]) == ("no", "Totals are wrong now")


def test_a_link_scanner_that_fetches_every_link_answers_nothing(page, email):
    html_links, text_links = email
    for link in html_links + text_links:
        response = page.request.get(link, headers={"User-Agent": "Mozilla/5.0 (compatible; SafeLinks)"})
        assert response.status == 200, link  # a page, never an answer
        page.request.head(link)

    assert answers() == []
