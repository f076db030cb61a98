"""A real send over SMTP to a loopback aiosmtpd server, parsed back with the email package."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from emails.models import EmailLog

pytestmark = pytest.mark.django_db


def test_a_journey_email_arrives_as_text_and_html_with_consent_headers_and_tracking(
    smtp_server, public_url, make_contact, send_welcome, artifacts_dir
):
    contact = make_contact(email="ada@example.com")

    log = send_welcome(contact)

    assert log.status == EmailLog.Status.SENT
    assert len(smtp_server.messages) == 1
    envelope = smtp_server.envelopes[0]
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = smtp_server.messages[0]
    # One real message as received, kept beside the screenshots (not printed into the run's output).
    (artifacts_dir / "smtp-message-as-received.eml").write_bytes(smtp_server.raw[0])

    assert message["Subject"] == "Welcome — let's get you set up"
    assert message["To"] == "ada@example.com"
    assert message["X-Hogsend-Email-Id"] == str(log.id)
    assert message["Message-ID"] == log.provider_message_id

    # RFC 8058 one-click: an https URL in List-Unsubscribe plus the List-Unsubscribe-Post marker.
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(
        r"<(https://mail\.hogsend\.test/unsubscribe/[^>]+/)>", message["List-Unsubscribe"].strip()
    )
    assert unsubscribe, message["List-Unsubscribe"]

    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = text_part.get_content(), html_part.get_content()

    assert "Welcome, Ada!" in text
    assert "Get set up: https://example.com/start" in text  # the text part keeps plain links
    assert "https://mail.hogsend.test/preferences/" in text
    assert unsubscribe.group(1) in text

    # Every content link is a signed click redirect; the target is only in our log, not the email.
    click_links = re.findall(r'href="(https://mail\.hogsend\.test/e/c/[^"]+)"', html)
    assert len(click_links) == 1
    assert 'href="https://example.com/start"' not in html
    log.refresh_from_db()
    assert log.links == ["https://example.com/start"]
    # Consent links are not tracked, and the open pixel is there.
    assert re.search(r'href="https://mail\.hogsend\.test/preferences/[^"]+"', html)
    assert re.search(r'<img src="https://mail\.hogsend\.test/e/o/[^"]+"', html)
    # CSS is inlined (css-inline): no <style> block, the button carries its own style.
    assert "<style" not in html
    assert re.search(r'<a [^>]*style="[^"]*background: #1d4ed8', html) or re.search(
        r'<a [^>]*style="[^"]*background:#1d4ed8', html
    )


def test_operator_mail_has_no_unsubscribe_headers(smtp_server, public_url, db):
    from emails.services import email_send

    log = email_send(
        to="csm@example.com",
        template="transactional/csm-alert",
        props={"customer_email": "cto@bigco.example", "customer_id": "user_1", "seats": 5},
        category="transactional",
        skip_preference_check=True,
        idempotency_key="csm-1",
    )
    assert log.status == EmailLog.Status.SENT
    message = smtp_server.messages[0]
    assert message["List-Unsubscribe"] is None
    assert "/preferences/" not in message.get_body(preferencelist=("plain",)).get_content()


def test_an_smtp_rejection_of_the_address_fails_the_send_at_once_with_the_reason(
    smtp_server, make_contact, send_welcome
):
    async def refuse(server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such user here"

    smtp_server.handle_RCPT = refuse
    contact = make_contact(email="nobody@example.com")

    log = send_welcome(contact)

    assert log.status == EmailLog.Status.FAILED
    assert "No such user" in log.status_reason
    assert log.attempts == 1
    assert smtp_server.messages == []


def test_reverse_url_for_tracking_is_public(public_url):
    assert reverse("emails:open", args=["x"]) == "/e/o/x/"
