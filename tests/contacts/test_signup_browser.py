"""Signup forms, double opt-in and the consent ledger in a real Chromium, against the web process as
`bin/run` serves it (gunicorn), mailing through a real SMTP server on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from django.urls import reverse

from contacts.models import ConsentChange, Contact, Event
from emails.models import EmailLog
from tests.emails.conftest import SmtpInbox, free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def inbox() -> Iterator[SmtpInbox]:
    from aiosmtpd.controller import Controller

    box = SmtpInbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def web(django_db_setup, collected_static, tmp_path_factory, inbox):
    from tests.support import gunicorn_server

    with gunicorn_server(
        tmp_path_factory.mktemp("signup-web"),
        static_root=collected_static,
        PUBLIC_BASE_URL="https://mail.example.com",
        EMAIL_PROVIDER="smtp",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(inbox.port),
        SIGNUP_RATE_LIMIT_PER_HOUR="1000",
    ) as server:
        yield server


@pytest.fixture
def shop(web) -> Iterator[str]:
    """Another site that embeds the form: a page on its own server, reached as `localhost` (a
    different site from 127.0.0.1, and local, so Chromium's local-network checks let it frame us)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    snippet = (
        f'<!doctype html><h1>Shop</h1><iframe src="{web.url}/forms/newsletter/embed/"'
        ' title="Newsletter signup" width="420" height="420" style="border:0"></iframe>'
    ).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(snippet)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def fresh_inbox(inbox) -> SmtpInbox:
    inbox.raw.clear()
    inbox.envelopes.clear()
    return inbox


def confirmation_link(inbox: SmtpInbox, to: str, web) -> str:
    """The link in the email, on the test's web process (the email names PUBLIC_BASE_URL)."""
    [message] = [m for m in inbox.messages if m["To"] == to]
    assert message["Subject"] == "Please confirm your subscription"
    text = message.get_body(("plain",)).get_content()
    path = re.search(r"https://mail\.example\.com(/forms/confirm/[^/\s]+/)", text).group(1)
    return web.url + path


def test_a_person_signs_up_a_prefetching_bot_confirms_nothing_and_the_button_confirms(
    web, browser, fresh_inbox, artifacts_dir, django_user_model
):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{web.url}/forms/newsletter/")
    assert page.get_by_role("heading", name="Our newsletter").is_visible()

    page.get_by_label("Email address").fill("ada@")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_text("Enter a valid email address, like ada@example.com.").wait_for()
    assert page.get_by_label("Email address").get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(artifacts_dir / "signup-invalid.png"), full_page=True)
    assert not Contact.objects.exists()

    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("First name").fill("Ada")
    page.get_by_role("button", name="Subscribe").click()
    assert "check your inbox" in page.get_by_role("status").inner_text()
    page.screenshot(path=str(artifacts_dir / "signup-check-inbox.png"), full_page=True)
    ada = Contact.objects.get(email="ada@example.com")
    assert ada.awaiting_confirmation and ada.properties["name"] == "Ada"

    link = confirmation_link(fresh_inbox, "ada@example.com", web)
    # A mail scanner follows the link before the person does: plain GETs, from a browser and not.
    assert context.request.get(link).status == 200
    assert httpx.get(link, headers={"User-Agent": "LinkScanner/1.0"}).status_code == 200
    ada.refresh_from_db()
    assert ada.awaiting_confirmation
    assert list(ada.consent_changes.values_list("kind", flat=True)) == ["confirmation_requested"]
    assert not Event.objects.filter(name="contact.confirmed").exists()

    page.goto(link)
    assert page.get_by_role("heading", name="Confirm your subscription").is_visible()
    page.screenshot(path=str(artifacts_dir / "signup-confirm.png"), full_page=True)
    page.get_by_role("button", name="Yes, confirm my subscription").click()
    page.get_by_role("heading", name="You're confirmed").wait_for()
    page.screenshot(path=str(artifacts_dir / "signup-confirmed.png"), full_page=True)
    ada.refresh_from_db()
    assert ada.confirmed_at is not None
    assert Event.objects.filter(contact=ada, name="contact.confirmed").count() == 1
    confirmed = ada.consent_changes.get(kind=ConsentChange.Kind.CONFIRMED)
    assert confirmed.ip_address == "127.0.0.1" and "Chrome" in confirmed.user_agent

    # The confirmation was the one email; the same link again changes nothing.
    page.goto(link)
    page.get_by_role("button", name="Yes, confirm my subscription").click()
    assert "already confirmed" in page.get_by_role("main").inner_text()
    assert ada.consent_changes.filter(kind=ConsentChange.Kind.CONFIRMED).count() == 1
    assert list(EmailLog.objects.values_list("template", flat=True)) == ["contacts/confirm"]

    # The operator sees the ledger on the contact's Studio page.
    django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")
    page.goto(f"{web.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "correct horse")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    page.goto(web.url + reverse("admin:contacts_contact_change", args=[ada.pk]))
    ledger = page.locator("#contact-consent-ledger")
    ledger.wait_for()
    rows = ledger.locator("tbody tr")
    assert rows.count() == 2
    assert "Confirmed the subscription" in rows.nth(0).inner_text()
    assert "Confirmation link" in rows.nth(0).inner_text() and "127.0.0.1" in rows.nth(0).inner_text()
    assert "Asked to confirm (double opt-in)" in rows.nth(1).inner_text()
    assert "Signup form" in rows.nth(1).inner_text()
    assert "confirmed" in page.locator("#consent").inner_text()
    page.screenshot(path=str(artifacts_dir / "signup-studio-ledger.png"), full_page=True)
    context.close()


def test_the_embed_works_inside_another_sites_iframe(web, shop, browser, fresh_inbox, artifacts_dir):
    context = browser.new_context(viewport={"width": 900, "height": 700})
    page = context.new_page()
    page.goto(shop)
    frame = page.frame_locator("iframe[title='Newsletter signup']")
    frame.get_by_label("Email address").fill("bea@example.com")
    frame.get_by_role("button", name="Subscribe").click()
    frame.get_by_role("status").wait_for()
    assert "check your inbox" in frame.get_by_role("status").inner_text()
    page.screenshot(path=str(artifacts_dir / "signup-embed.png"), full_page=True)
    assert Contact.objects.get(email="bea@example.com").awaiting_confirmation
    assert confirmation_link(fresh_inbox, "bea@example.com", web)
    context.close()


def test_an_expired_or_tampered_link_shows_a_clear_page(web, browser, fresh_inbox):
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"{web.url}/forms/confirm/not-a-real-token/")
    assert response is not None and response.status == 400
    assert page.get_by_role("heading", name="This link doesn't work").is_visible()
    context.close()
