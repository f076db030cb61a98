from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from contacts.models import Event
from contacts.services import contact_unsubscribe
from journeys.durations import days, hours, minutes
from journeys.shipped.support_followup import next_morning

CUSTOMER = "kim@example.com"
SUPPORT = "support-inbox@hogsend.example"
BASE = "https://mail.hogsend.test"
START = datetime(2026, 1, 5, 15, 30, tzinfo=UTC)  # a Monday afternoon


@pytest.fixture(autouse=True)
def inboxes(settings):
    settings.SUPPORT_ALERT_EMAIL = SUPPORT
    settings.PUBLIC_BASE_URL = BASE


def resolve(harness, **properties):
    harness.emit(
        "ticket.resolved",
        user_id="kim",
        email=CUSTOMER,
        properties={"ticket_id": "4711", "subject": "Export stuck at 99%", **properties},
        contact_properties={"name": "Kim Lee", "company": "Northwind"},
    )
    return harness.run("support-follow-up", "kim")


def sent(harness, to=CUSTOMER):
    return [e for e in harness.emails(to) if e.status == "sent"]


def links(mailoutbox):
    """The yes, no and hosted-answer links of the last "did this fix it?" email."""
    (message,) = [m for m in mailoutbox if m.subject == "Did this fix it?"]
    return re.findall(rf"{re.escape(BASE)}(/e/a/[^\s]+/)", message.body)


def answer(client, path, **data):
    response = client.post(path, {"text": "", **data})
    assert response.status_code == 200, response.content
    return response


def test_the_question_waits_for_the_next_morning_at_nine_utc(journey_harness):
    journey_harness.advance(START - journey_harness.now())
    run = resolve(journey_harness)
    assert (run.status, run.current_node) == ("waiting", "until-morning")

    journey_harness.advance(hours(17) + minutes(29))  # Tuesday 08:59
    assert sent(journey_harness) == []
    journey_harness.advance(minutes(1))

    (question,) = sent(journey_harness)
    assert question.template == "support/did-it-fix" and question.sent_at == datetime(
        2026, 1, 6, 9, tzinfo=UTC
    )
    assert question.props == {"ticket_id": "4711", "ticket_subject": "Export stuck at 99%"}
    assert journey_harness.run("support-follow-up", "kim").current_node == "await-answer"


def test_with_the_customers_time_zone_it_asks_at_nine_their_time(journey_harness):
    journey_harness.advance(START - journey_harness.now())
    resolve(journey_harness, timezone="America/New_York")  # 10:30 there: tomorrow 09:00 EST = 14:00 UTC
    journey_harness.advance(hours(22) + minutes(29))
    assert sent(journey_harness) == []
    journey_harness.advance(minutes(1))

    assert sent(journey_harness)[0].sent_at == datetime(2026, 1, 6, 14, tzinfo=UTC)


def test_the_morning_is_nine_local_across_a_daylight_saving_change_and_an_unknown_zone_is_utc():
    before_spring = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)  # Saturday 17:00 in New York (EST)
    assert next_morning(before_spring, "America/New_York") == datetime(
        2026, 3, 8, 13, tzinfo=UTC
    )  # 09:00 EDT
    assert next_morning(before_spring, "Mars/Olympus_Mons") == datetime(2026, 3, 8, 9, tzinfo=UTC)
    assert next_morning(before_spring, "../../etc/passwd") == datetime(2026, 3, 8, 9, tzinfo=UTC)
    assert next_morning(datetime(2026, 3, 8, 8, 59, tzinfo=UTC)) == datetime(2026, 3, 8, 9, tzinfo=UTC)


def test_a_ticket_resolved_days_ago_is_asked_about_at_once(journey_harness):
    resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")

    assert [e.template for e in sent(journey_harness)] == ["support/did-it-fix"]


def test_yes_ends_the_journey_without_reopening(journey_harness, client, mailoutbox):
    resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    yes, _, _ = links(mailoutbox)

    assert client.get(yes).status_code == 200  # the confirm page: a prefetch answers nothing
    assert journey_harness.run("support-follow-up", "kim").current_node == "await-answer"
    answer(client, yes)

    run = journey_harness.run("support-follow-up", "kim")
    assert (run.status, run.current_node) == ("completed", "fixed")
    assert journey_harness.triggered("support.reopen_requested") == []
    assert sent(journey_harness, SUPPORT) == []


def test_no_requests_a_reopen_pages_support_and_tells_the_customer(journey_harness, client, mailoutbox):
    journey_harness.emit("pricing.viewed", user_id="kim", email=CUSTOMER)
    resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    _, no, _ = links(mailoutbox)

    answer(client, no, text="Still stuck at 99% after the update")

    (reopen,) = journey_harness.triggered("support.reopen_requested")
    assert reopen.properties == {
        "ticket_id": "4711",
        "ticket_subject": "Export stuck at 99%",
        "text": "Still stuck at 99% after the update",
    }
    (page,) = sent(journey_harness, SUPPORT)
    assert page.subject == "[Support] not fixed: ticket 4711 for Kim Lee (Northwind)"
    assert page.category == "transactional" and page.operator_mail
    assert page.props["text"] == "Still stuck at 99% after the update"
    assert {"pricing.viewed", "ticket.resolved"} <= {
        row["event"] for row in page.props["contact"]["activity"]
    }
    assert sorted(e.template for e in sent(journey_harness)) == ["support/did-it-fix", "support/reopened"]
    assert journey_harness.run("support-follow-up", "kim").status == "completed"


def test_the_hosted_page_answers_in_the_customers_own_words(journey_harness, client, mailoutbox):
    resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    _, _, page = links(mailoutbox)

    answer(client, page, answer="no", text="The export works but the totals are wrong")

    (reopen,) = journey_harness.triggered("support.reopen_requested")
    assert reopen.properties["text"] == "The export works but the totals are wrong"


def test_clicking_twice_answers_once(journey_harness, client, mailoutbox):
    resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    yes, no, _ = links(mailoutbox)

    answer(client, no, text="first")
    again = answer(client, no, text="second")
    answer(client, yes)

    assert "already answered" in again.content.decode()
    assert Event.objects.filter(name="email.answered").count() == 1
    assert len(journey_harness.triggered("support.reopen_requested")) == 1
    assert len(sent(journey_harness, SUPPORT)) == 1


def test_only_an_answer_to_this_email_resumes_the_wait(journey_harness):
    run = resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    journey_harness.emit(
        "email.answered",
        user_id="kim",
        properties={"question": "fixed", "answer": "no", "email_id": "an-older-email"},
    )

    assert journey_harness.run("support-follow-up", "kim").current_node == "await-answer"
    assert run.status == "waiting"


def test_no_answer_in_three_days_ends_quietly(journey_harness):
    resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    journey_harness.advance(days(3))

    assert journey_harness.run("support-follow-up", "kim").status == "completed"
    assert journey_harness.triggered("support.reopen_requested") == []
    assert len(sent(journey_harness)) == 1


def test_a_reopened_ticket_exits_mid_wait(journey_harness, client, mailoutbox):
    resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    journey_harness.emit("ticket.reopened", user_id="kim")
    _, no, _ = links(mailoutbox)
    answer(client, no)

    run = journey_harness.run("support-follow-up", "kim")
    assert (run.status, run.exit_reason) == ("exited", "exit_on:ticket.reopened")
    assert journey_harness.triggered("support.reopen_requested") == []


def test_an_unsubscribed_customer_is_not_asked(journey_harness):
    journey_harness.advance(START - journey_harness.now())
    resolve(journey_harness)
    contact_unsubscribe(contact=journey_harness.contact("kim"))
    journey_harness.advance(days(1))

    assert journey_harness.emails(CUSTOMER) == []
    assert journey_harness.run("support-follow-up", "kim").status == "completed"


def test_a_replay_after_the_question_sends_nothing_twice(journey_harness, client, mailoutbox):
    run = resolve(journey_harness, resolved_at="2026-01-01T10:00:00Z")
    journey_harness.replay(run)
    _, no, _ = links(mailoutbox)
    answer(client, no)

    assert sorted(e.template for e in sent(journey_harness)) == ["support/did-it-fix", "support/reopened"]
    assert len(journey_harness.triggered("support.reopen_requested")) == 1
