"""Preference center and one-click unsubscribe over HTTP: signed links, GETs that never change consent."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from contacts.models import Contact
from contacts.preferences import preference_center_url, preference_token_make, unsubscribe_url
from journeys.durations import days

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(db) -> Contact:
    return Contact.objects.create(user_id="u_pref", email="pref@example.com")


def local(url: str) -> str:
    """The path of an absolute link from an email, for the test client."""
    return urlsplit(url).path


def test_one_click_unsubscribe_is_a_post_needing_no_cookie_or_csrf_token(contact):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        local(unsubscribe_url(contact=contact)),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.unsubscribed_at is not None


def test_a_get_of_the_unsubscribe_link_only_asks(client, contact):
    response = client.get(local(unsubscribe_url(contact=contact)))
    assert response.status_code == 200
    assert b"Unsubscribe from all emails?" in response.content
    client.head(local(unsubscribe_url(contact=contact)))
    client.get(local(preference_center_url(contact=contact)))
    contact.refresh_from_db()
    assert contact.unsubscribed_at is None


def test_the_preference_center_saves_category_choices_by_post(client, contact):
    url = local(preference_center_url(contact=contact))
    page = client.get(url)
    assert b"Product updates" in page.content and b"Tips and best practices" in page.content
    assert b"Account and service messages" not in page.content  # transactional is not a choice

    response = client.post(url, {"action": "save", "categories": ["journey", "tips"]})

    assert response.status_code == 302 and response["Location"].endswith("?done=saved")
    contact.refresh_from_db()
    assert contact.category_opt_outs == ["product-updates"]
    assert contact.category_opt_ins == ["tips"]
    assert b"Your email preferences are saved." in client.get(response["Location"]).content


def test_the_preference_center_form_is_csrf_protected(contact):
    client = Client(enforce_csrf_checks=True)
    response = client.post(local(preference_center_url(contact=contact)), {"action": "unsubscribe_all"})
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.unsubscribed_at is None


def test_unsubscribe_all_and_resubscribe(client, contact):
    url = local(preference_center_url(contact=contact))
    client.post(url, {"action": "unsubscribe_all"})
    contact.refresh_from_db()
    assert contact.unsubscribed_at is not None
    assert b"Resubscribe" in client.get(url).content

    client.post(url, {"action": "resubscribe"})
    contact.refresh_from_db()
    assert contact.unsubscribed_at is None


def test_a_tampered_link_gets_a_friendly_400_page(client, contact):
    token = preference_token_make(contact=contact)
    response = client.get(f"/preferences/{token[:-2]}xx/")
    assert response.status_code == 400
    assert (
        b"This link doesn" in response.content
        and b"Nothing about your email settings has changed" in response.content
    )
    post = client.post(f"/unsubscribe/{token[:-2]}xx/")
    assert post.status_code == 400
    contact.refresh_from_db()
    assert contact.unsubscribed_at is None


def test_an_expired_link_gets_a_friendly_410_page(client, contact, settings):
    settings.PREFERENCE_LINK_MAX_AGE_DAYS = 30
    with time_machine.travel(timezone.now() - timedelta(days=31)):
        url = local(unsubscribe_url(contact=contact))
    response = client.post(url)
    assert response.status_code == 410
    assert b"This link has expired" in response.content
    contact.refresh_from_db()
    assert contact.unsubscribed_at is None


def test_consent_pages_are_not_cached_and_do_not_leak_the_token(client, contact):
    response = client.get(local(preference_center_url(contact=contact)))
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"


def test_unsubscribing_mid_journey_keeps_the_run_but_no_journey_email_follows(client, journey_harness):
    journey_harness.start("activation-welcome", user_id="ada", email="ada@example.com")
    contact = journey_harness.contact("ada")

    assert client.post(local(unsubscribe_url(contact=contact))).status_code == 200
    run = journey_harness.run("activation-welcome", "ada")
    assert run.status == "waiting"  # unsubscribing is not an exit
    journey_harness.advance(days(2))

    assert journey_harness.run("activation-welcome", "ada").status == "completed"
    assert journey_harness.templates_sent_to("ada@example.com") == ["activation/welcome"]
    nudge = journey_harness.emails("ada@example.com")[-1]
    assert (nudge.template, nudge.status, nudge.status_reason) == (
        "activation/nudge",
        "suppressed",
        "unsubscribed",
    )
