from __future__ import annotations

import pytest

from contacts.services import contact_unsubscribe
from journeys.durations import hours, minutes

CTO = "cto@big.example"
CSM = "csm@hogsend.example"


@pytest.fixture(autouse=True)
def csm_inbox(settings):
    settings.CSM_ALERT_EMAIL = CSM


def signup(harness, plan="enterprise", seats=250):
    harness.emit("user.signed_up", user_id="big", email=CTO, properties={"plan": plan, "seats": seats})
    return harness.run("concierge-onboarding", "big")


def pages(harness):
    return [e for e in harness.emails(CSM) if e.status == "sent"]


def test_only_enterprise_signups_enter(journey_harness):
    assert signup(journey_harness, plan="team") is None
    assert journey_harness.skip_reasons("concierge-onboarding", "big") == ["trigger_conditions_not_met"]
    assert pages(journey_harness) == []


def test_entry_pages_the_csm_through_the_alert_task_and_parks(journey_harness):
    run = signup(journey_harness)

    assert (run.status, run.current_node) == ("waiting", "await-csm")
    [page] = pages(journey_harness)
    assert page.subject == f"[CSM] new enterprise signup: {CTO}"
    assert page.category == "transactional"
    assert page.props["seats"] == 250 and page.props["reminder"] is False
    [requested] = journey_harness.triggered("csm.assignment_requested")
    assert requested.properties["seats"] == 250


def test_csm_contact_within_a_day_sends_the_intro_with_the_csms_name(journey_harness):
    signup(journey_harness)
    journey_harness.advance(hours(5))
    journey_harness.emit("csm.contacted", user_id="big", properties={"csm_name": "Sarah", "channel": "email"})

    [intro] = [e for e in journey_harness.emails(CTO)]
    assert intro.template == "onboarding/concierge-intro"
    assert intro.props == {"csm_name": "Sarah"}
    assert len(pages(journey_harness)) == 1
    assert journey_harness.run("concierge-onboarding", "big").status == "completed"


def test_a_day_of_silence_re_pages_with_a_fresh_requested_at(journey_harness):
    signup(journey_harness)
    journey_harness.advance(hours(24))

    first, reminder = pages(journey_harness)
    assert reminder.subject == f"[CSM — reminder] enterprise signup waiting: {CTO}"
    assert reminder.props["reminder"] is True
    assert reminder.props["requested_at"] != first.props["requested_at"]
    assert reminder.idempotency_key != first.idempotency_key
    assert journey_harness.run("concierge-onboarding", "big").current_node == "await-csm-2"


def test_contact_after_the_re_page_sends_the_intro(journey_harness):
    signup(journey_harness)
    journey_harness.advance(hours(30))
    journey_harness.emit("csm.contacted", user_id="big", properties={"csm_name": "Omar"})

    assert [e.props for e in journey_harness.emails(CTO)] == [{"csm_name": "Omar"}]


def test_a_contact_that_landed_between_the_waits_is_caught_by_the_lookback(journey_harness):
    run = signup(journey_harness)
    journey_harness.advance(hours(24))  # first wait timed out, re-paged, second wait began
    # Rewind to the gap between the two waits: the worker dies before the second wait is recorded,
    # the CSM's event lands meanwhile, then a new worker replays the journey up to the second wait.
    journey_harness.crash(run)
    run.steps.filter(label="await-csm-2").delete()
    journey_harness.advance(minutes(10))
    journey_harness.emit("csm.contacted", user_id="big", properties={"csm_name": "Lee"})
    journey_harness.resume(run)

    assert [e.props for e in journey_harness.emails(CTO)] == [{"csm_name": "Lee"}]
    assert journey_harness.run("concierge-onboarding", "big").status == "completed"


def test_two_days_without_a_human_falls_back_to_the_automated_welcome(journey_harness):
    signup(journey_harness)
    journey_harness.advance(hours(48))

    assert journey_harness.templates_sent_to(CTO) == ["onboarding/enterprise-welcome"]
    assert len(pages(journey_harness)) == 2
    assert journey_harness.run("concierge-onboarding", "big").status == "completed"


@pytest.mark.parametrize("when", [hours(2), hours(26)], ids=["mid-first-wait", "mid-second-wait"])
def test_meeting_booked_exits_at_any_point_including_mid_wait(journey_harness, when):
    signup(journey_harness)
    journey_harness.advance(when)
    journey_harness.emit("meeting.booked", user_id="big", properties={"meeting_at": "2026-06-18T15:00:00Z"})
    journey_harness.advance(hours(72))

    run = journey_harness.run("concierge-onboarding", "big")
    assert (run.status, run.exit_reason) == ("exited", "exit_on:meeting.booked")
    assert journey_harness.emails(CTO) == []


def test_csm_contacted_is_not_an_exit_event(journey_harness):
    from journeys.registry import registry

    assert "csm.contacted" not in {rule.event for rule in registry.get("concierge-onboarding").exit_on}


def test_unsubscribed_customer_gets_no_mail_but_the_csm_is_still_paged(journey_harness):
    signup(journey_harness)
    contact_unsubscribe(contact=journey_harness.contact("big"))
    journey_harness.advance(hours(48))

    assert len(pages(journey_harness)) == 2  # operator mail is never gated by the customer's consent
    assert journey_harness.emails(CTO) == []
    assert journey_harness.run("concierge-onboarding", "big").status == "completed"


def test_a_retry_of_the_same_page_does_not_send_twice(journey_harness):
    from emails.models import EmailLog

    signup(journey_harness)
    [requested] = journey_harness.triggered("csm.assignment_requested")
    journey_harness._route(requested)  # the engine delivers the same page again

    assert EmailLog.objects.filter(to_email=CSM).count() == 1
