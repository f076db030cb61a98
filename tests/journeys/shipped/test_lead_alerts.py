from __future__ import annotations

import pytest

from contacts.services import contact_upsert
from journeys.durations import minutes, seconds

SALES = "sales-inbox@hogsend.example"


@pytest.fixture(autouse=True)
def sales_inbox(settings):
    settings.LEAD_ALERT_EMAIL = SALES


@pytest.fixture
def ada(journey_harness):
    """A known contact: identified earlier, browsing the pricing page, then captured by a form."""
    contact_upsert(
        user_id="ada",
        email="ada@analytical.example",
        properties={"name": "Ada Lovelace", "company": "Analytical Engines"},
    )
    for _ in range(3):
        journey_harness.emit("pricing.viewed", user_id="ada")
    journey_harness.advance(minutes(30))
    return "ada"


def alerts(harness):
    """Sent alerts, the capture's first (two sent in the same virtual instant tie on time)."""
    return sorted(
        (e for e in harness.emails(SALES) if e.status == "sent"), key=lambda e: e.props["follow_up"]
    )


def capture(harness, user_id="ada"):
    # The form sends only the user id and what it asked: who this is comes from the contacts table.
    return harness.emit("lead.captured", user_id=user_id, properties={"form": "demo-request", "seats": 300})


def test_the_alert_names_the_contact_company_and_recent_activity_after_the_grace_window(journey_harness, ada):
    capture(journey_harness)
    journey_harness.advance(seconds(119))
    assert alerts(journey_harness) == []
    journey_harness.advance(seconds(1))

    (alert,) = alerts(journey_harness)
    assert alert.subject == "[Lead] Ada Lovelace (Analytical Engines)"
    assert alert.category == "transactional" and alert.operator_mail
    contact = alert.props["contact"]
    assert (contact["email"], contact["company"]) == ("ada@analytical.example", "Analytical Engines")
    assert {"event": "pricing.viewed", "count": 3} in [
        {"event": r["event"], "count": r["count"]} for r in contact["activity"]
    ]
    assert alert.props["lead"] == {"form": "demo-request", "seats": 300}
    assert alert.props["context"] == []


def test_context_within_the_grace_window_is_folded_into_one_alert(journey_harness, ada):
    capture(journey_harness)
    journey_harness.advance(seconds(40))
    journey_harness.emit("lead.context", user_id="ada", properties={"text": "We need SSO for 300 seats"})
    journey_harness.advance(seconds(30))
    journey_harness.emit("lead.context", user_id="ada", properties={"text": "Before Q3, ideally"})
    journey_harness.advance(minutes(5))

    (alert,) = alerts(journey_harness)
    assert alert.props["context"] == ["We need SSO for 300 seats", "Before Q3, ideally"]
    assert "lead.context" not in [r["event"] for r in alert.props["contact"]["activity"]]


def test_context_after_the_window_is_a_short_follow_up_alert(journey_harness, ada):
    capture(journey_harness)
    journey_harness.advance(minutes(2))
    journey_harness.emit("lead.context", user_id="ada", properties={"text": "Also: we use Okta"})

    first, follow_up = alerts(journey_harness)
    assert first.props["context"] == []
    assert follow_up.subject == "[Lead — more context] Ada Lovelace (Analytical Engines)"
    assert follow_up.props["context"] == ["Also: we use Okta"] and follow_up.props["follow_up"] is True


def test_context_exactly_at_the_end_of_the_window_belongs_to_the_follow_up_only(journey_harness, ada):
    capture(journey_harness)
    journey_harness.advance(seconds(119))
    journey_harness.emit("lead.context", user_id="ada", properties={"text": "last second"}, at=seconds(1))

    first, follow_up = alerts(journey_harness)
    assert first.props["context"] == [] and follow_up.props["context"] == ["last second"]


def test_an_unknown_lead_is_named_by_what_we_have(journey_harness):
    journey_harness.emit("lead.captured", user_id="visitor-9", email="v9@example.com")
    journey_harness.advance(minutes(2))

    (alert,) = alerts(journey_harness)
    assert alert.subject == "[Lead] v9@example.com"


def test_a_second_delivery_of_the_capture_pages_once(journey_harness, ada):
    result = capture(journey_harness)
    journey_harness._route(result.event)  # the engine delivers the same event again
    journey_harness.advance(minutes(2))

    assert len(alerts(journey_harness)) == 1


def test_an_unsubscribed_lead_still_reaches_sales(journey_harness, ada):
    from contacts.services import contact_unsubscribe

    contact_unsubscribe(contact=journey_harness.contact("ada"))
    capture(journey_harness)
    journey_harness.advance(minutes(2))

    assert len(alerts(journey_harness)) == 1
