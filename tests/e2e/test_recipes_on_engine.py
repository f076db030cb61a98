"""The seeds' recipes on a real Hatchet engine, driven through the HTTP API and the answer pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from contacts.models import Event
from tests.e2e.conftest import APPROVAL_INBOX, SALES_INBOX, SUPPORT_INBOX, wait_until
from tests.e2e.test_journeys_on_engine import post, run_of, subject, subjects, wait_for_run

# Compressed time: a journey day is two seconds of wall clock; a run the machine stalls through
# is retried once.
pytestmark = [pytest.mark.engine, pytest.mark.flaky(reruns=1, reruns_delay=2)]


def mail_to(smtp, address, count=1, what="mail"):
    return wait_until(
        lambda: (found := smtp.to(address)) and len(found) >= count and found, timeout=30, what=what
    )


def text_of(message):
    return message.get_body(("plain",)).get_content()


def test_the_approval_gate_holds_the_offer_until_the_approver_grants_it(api, live, smtp):
    post(
        api,
        "offer.proposed",
        "gated",
        eventProperties={"discount_percent": 30, "reason": "asked to cancel"},
        contactProperties={"name": "Gail Gated", "company": "Holdco"},
    )
    wait_until(
        lambda: (r := run_of("approval-gate", "gated")) and r.current_node == "await-approval",
        timeout=10,
        what="await-approval",
    )
    (page,) = mail_to(smtp, APPROVAL_INBOX, what="the approver's page")
    assert subject(page) == "[Approval needed] 30% offer for Gail Gated (Holdco)"
    assert subjects(smtp, "gated") == []  # held until someone signs off
    post(api, "approval.granted", "gated", eventProperties={"approved_by": "Dana", "discount_percent": 20})

    wait_for_run("approval-gate", "gated", "completed")
    (offer,) = smtp.to("gated@example.com")
    assert subject(offer) == "20% off, just for you"
    assert "Dana from our team" in text_of(offer)


def test_support_follow_up_turns_a_no_click_into_a_reopen_and_a_page(api, live, smtp, client):
    resolved = (datetime.now(UTC) - timedelta(days=2)).isoformat()  # its morning has passed: asked at once
    post(
        api,
        "ticket.resolved",
        "ticketed",
        eventProperties={"ticket_id": "4711", "subject": "Export stuck", "resolved_at": resolved},
        contactProperties={"name": "Tia Ticket", "company": "Helpco"},
    )
    (question,) = mail_to(smtp, "ticketed@example.com", what="did this fix it?")
    assert subject(question) == "Did this fix it?"
    _, no, _ = re.findall(r"https?://[^\s/]+(/e/a/[^\s]+/)", text_of(question))
    assert client.get(no).status_code == 200  # the confirm page: a prefetch answers nothing
    assert not Event.objects.filter(name="email.answered").exists()

    assert client.post(no, {"text": "Still stuck after the update"}).status_code == 200
    assert "already answered" in client.post(no, {"text": "again"}).content.decode()

    wait_for_run("support-follow-up", "ticketed", "completed")
    (alert,) = mail_to(smtp, SUPPORT_INBOX, what="the support page")
    assert subject(alert) == "[Support] not fixed: ticket 4711 for Tia Ticket (Helpco)"
    assert "Still stuck after the update" in text_of(alert)
    assert subjects(smtp, "ticketed") == ["Did this fix it?", "We've reopened your request"]
    assert Event.objects.filter(name="email.answered").count() == 1
    assert Event.objects.filter(name="support.reopen_requested", contact__user_id="ticketed").count() == 1


def test_a_lead_alert_folds_context_from_the_same_moment_and_pages_again_for_later_context(api, live, smtp):
    body = {
        "events": [
            {
                "name": "lead.captured",
                "userId": "leady",
                "userEmail": "leady@example.com",
                "eventProperties": {"form": "demo-request", "seats": 300},
                "contactProperties": {"name": "Lee Lead", "company": "Prospect Ltd"},
            },
            {"name": "lead.context", "userId": "leady", "eventProperties": {"text": "We need SSO"}},
        ]
    }
    assert api.post("/v1/events/batch", body).status_code in (200, 202, 207)
    (alert,) = mail_to(smtp, SALES_INBOX, what="the lead alert")
    assert subject(alert) == "[Lead] Lee Lead (Prospect Ltd)"
    assert "We need SSO" in text_of(alert) and "demo-request" in text_of(alert)

    post(api, "lead.context", "leady", eventProperties={"text": "Also: Okta"})
    _, follow_up = mail_to(smtp, SALES_INBOX, count=2, what="the follow-up alert")
    assert subject(follow_up) == "[Lead — more context] Lee Lead (Prospect Ltd)"
    assert "Also: Okta" in text_of(follow_up) and "We need SSO" not in text_of(follow_up)
    assert len(smtp.to(SALES_INBOX)) == 2
