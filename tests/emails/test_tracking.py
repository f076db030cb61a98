"""First-party open and click tracking through signed ids, with bots and prefetchers kept out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from contacts.models import Event
from emails.models import EmailLog
from emails.tracking import click_token, open_token

pytestmark = pytest.mark.django_db
Status = EmailLog.Status
BROWSER_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"


@pytest.fixture
def sent(make_contact, send_welcome, public_url, mailoutbox):
    """A sent welcome email (with its tracked links), looked at three seconds after it went out."""
    contact = make_contact()
    log = send_welcome(contact)
    html = mailoutbox[0].alternatives[0][0]
    traveller = time_machine.travel(timezone.now() + timedelta(seconds=3), tick=False)
    traveller.start()
    yield log, html
    traveller.stop()


def path_of(url: str) -> str:
    return re.sub(r"^https://mail\.hogsend\.test", "", url)


def test_a_click_redirects_to_the_emails_own_link_and_is_recorded_once_as_an_event(client, sent):
    log, html = sent
    (click,) = re.findall(r'href="(https://mail\.hogsend\.test/e/c/[^"]+)"', html)

    first = client.get(path_of(click), headers={"User-Agent": BROWSER_UA})
    again = client.get(path_of(click), headers={"User-Agent": BROWSER_UA})

    assert first.status_code == 302 and first["Location"] == "https://example.com/start"
    assert again["Location"] == "https://example.com/start"
    log.refresh_from_db()
    assert log.status == Status.CLICKED
    assert log.clicked_at is not None and log.opened_at is not None  # a click proves an open
    assert log.click_count == 2
    (event,) = Event.objects.filter(name="email.clicked")
    assert event.source == Event.Source.SYSTEM
    assert event.contact_id == log.contact_id
    assert event.properties["url"] == "https://example.com/start"
    assert event.properties["email_id"] == str(log.pk)


def test_the_open_pixel_records_the_first_open_and_emits_email_opened(client, sent):
    log, html = sent
    (pixel,) = re.findall(r'<img src="(https://mail\.hogsend\.test/e/o/[^"]+)"', html)

    response = client.get(path_of(pixel), headers={"User-Agent": BROWSER_UA})
    client.get(path_of(pixel), headers={"User-Agent": BROWSER_UA})

    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    log.refresh_from_db()
    assert (log.status, log.open_count) == (Status.OPENED, 2)
    assert Event.objects.filter(name="email.opened", contact_id=log.contact_id).count() == 1


def test_a_tampered_click_link_is_not_a_redirect(client, sent):
    log, _ = sent
    token = click_token(log.pk, 0)
    forged = token.replace(f"{log.pk}.0", f"{log.pk}.1")
    assert client.get(f"/e/c/{forged}/", headers={"User-Agent": BROWSER_UA}).status_code == 404
    # A validly signed index that was never a link in this email is refused too.
    assert (
        client.get(f"/e/c/{click_token(log.pk, 7)}/", headers={"User-Agent": BROWSER_UA}).status_code == 404
    )
    assert client.get("/e/c/https:%2F%2Fevil.example/", headers={"User-Agent": BROWSER_UA}).status_code == 404


@pytest.mark.parametrize(
    "user_agent",
    [
        "",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "python-requests/2.32",
        "Mozilla/5.0 (Windows NT 10.0) Barracuda Sentinel (EE)",
        "Microsoft Office Existence Discovery",
    ],
)
def test_bots_and_scanners_follow_links_without_counting(client, sent, user_agent):
    log, _ = sent
    response = client.get(f"/e/c/{click_token(log.pk, 0)}/", headers={"User-Agent": user_agent})
    client.get(f"/e/o/{open_token(log.pk)}/", headers={"User-Agent": user_agent})
    assert response["Location"] == "https://example.com/start"
    log.refresh_from_db()
    assert (log.status, log.click_count, log.open_count) == (Status.SENT, 0, 0)
    assert not Event.objects.filter(name__startswith="email.").exists()


def test_head_requests_do_not_count(client, sent):
    log, _ = sent
    client.head(f"/e/c/{click_token(log.pk, 0)}/", headers={"User-Agent": BROWSER_UA})
    client.head(f"/e/o/{open_token(log.pk)}/", headers={"User-Agent": BROWSER_UA})
    log.refresh_from_db()
    assert log.clicked_at is None and log.opened_at is None


def test_a_click_within_seconds_of_the_send_is_a_scanner(client, make_contact, send_welcome):
    with time_machine.travel(timezone.now(), tick=False):
        log = send_welcome(make_contact())
        with time_machine.travel(timezone.now() + timedelta(seconds=1), tick=False):
            client.get(f"/e/c/{click_token(log.pk, 0)}/", headers={"User-Agent": BROWSER_UA})
    log.refresh_from_db()
    assert log.clicked_at is None
