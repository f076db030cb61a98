"""The preference center and one-click unsubscribe in a real headless Chromium against a live server."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from contacts.models import Contact
from contacts.preferences import preference_center_url, unsubscribe_url

pytestmark = [pytest.mark.browser]


@pytest.fixture
def contact(transactional_db) -> Contact:
    return Contact.objects.create(
        user_id="u_browser", email="grace@example.com", category_opt_outs=["product-updates"]
    )


def on_live_server(live_server, url: str) -> str:
    return live_server.url + urlsplit(url).path


def test_a_person_changes_categories_unsubscribes_and_resubscribes(live_server, page, artifacts_dir, contact):
    page.goto(on_live_server(live_server, preference_center_url(contact=contact)))
    assert page.get_by_role("heading", name="Email preferences").is_visible()
    product_updates = page.get_by_label("Product updates")
    tips = page.get_by_label("Tips and best practices")
    assert not product_updates.is_checked() and not tips.is_checked()
    assert page.get_by_label("Getting started and account tips").is_checked()
    page.screenshot(path=str(artifacts_dir / "preferences-center.png"), full_page=True)

    tips.check()
    product_updates.check()
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_url(re.compile(r"done=saved$"))
    assert page.get_by_role("status").inner_text() == "Your email preferences are saved."
    page.screenshot(path=str(artifacts_dir / "preferences-saved.png"), full_page=True)
    contact.refresh_from_db()
    assert (contact.category_opt_outs, contact.category_opt_ins) == ([], ["tips"])

    page.get_by_role("button", name="Unsubscribe from all emails").click()
    page.wait_for_url(re.compile(r"done=unsubscribed$"))
    assert page.get_by_role("button", name="Resubscribe").is_visible()
    page.screenshot(path=str(artifacts_dir / "preferences-unsubscribed.png"), full_page=True)
    contact.refresh_from_db()
    assert contact.unsubscribed_at is not None

    page.get_by_role("button", name="Resubscribe").click()
    page.wait_for_url(re.compile(r"done=resubscribed$"))
    contact.refresh_from_db()
    assert contact.unsubscribed_at is None


def test_opening_the_unsubscribe_link_asks_first_and_the_button_unsubscribes(
    live_server, page, artifacts_dir, contact
):
    page.goto(on_live_server(live_server, unsubscribe_url(contact=contact)))
    assert page.get_by_role("heading", name="Unsubscribe from all emails?").is_visible()
    page.screenshot(path=str(artifacts_dir / "unsubscribe-confirm.png"), full_page=True)
    contact.refresh_from_db()
    assert contact.unsubscribed_at is None  # a GET never changes consent

    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You're unsubscribed").wait_for()
    page.screenshot(path=str(artifacts_dir / "unsubscribe-done.png"), full_page=True)
    contact.refresh_from_db()
    assert contact.unsubscribed_at is not None


def test_a_mail_client_one_click_post_from_the_browser_context_needs_no_cookie(live_server, page, contact):
    # What Gmail does for RFC 8058: a bare POST with the List-Unsubscribe=One-Click body, no cookies.
    response = page.request.post(
        on_live_server(live_server, unsubscribe_url(contact=contact)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data="List-Unsubscribe=One-Click",
    )
    assert response.status == 200
    contact.refresh_from_db()
    assert contact.unsubscribed_at is not None


def test_a_tampered_link_shows_a_friendly_page(live_server, page, artifacts_dir, contact):
    url = on_live_server(live_server, preference_center_url(contact=contact))
    response = page.goto(url[:-4] + "xyz/")
    assert response is not None and response.status == 400
    assert page.get_by_role("heading", name="This link doesn't work").is_visible()
    page.screenshot(path=str(artifacts_dir / "preferences-invalid-link.png"), full_page=True)
