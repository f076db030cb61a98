from __future__ import annotations

import pytest

from contacts.services import contact_unsubscribe
from journeys.durations import days, hours

CUSTOMER = "max@example.com"
APPROVER = "approvals@hogsend.example"


@pytest.fixture(autouse=True)
def approver_inbox(settings):
    settings.APPROVAL_ALERT_EMAIL = APPROVER


def propose(harness, discount=25, **extra):
    harness.emit(
        "offer.proposed",
        user_id="max",
        email=CUSTOMER,
        properties={"discount_percent": discount, "reason": "asked to cancel: too expensive", **extra},
        contact_properties={"first_name": "Max", "last_name": "Mustermann", "company": "Initech"},
    )
    return harness.run("approval-gate", "max")


def pages(harness):
    return [e for e in harness.emails(APPROVER) if e.status == "sent"]


def customer_mail(harness):
    return [e for e in harness.emails(CUSTOMER) if e.status == "sent"]


def test_a_proposal_pages_the_approver_and_holds_the_send(journey_harness):
    run = propose(journey_harness)

    assert (run.status, run.current_node) == ("waiting", "await-approval")
    (page,) = pages(journey_harness)
    assert page.subject == "[Approval needed] 25% offer for Max Mustermann (Initech)"
    assert page.category == "transactional" and page.operator_mail
    assert page.props["contact"]["company"] == "Initech"
    assert page.props["reason"] == "asked to cancel: too expensive"
    (requested,) = journey_harness.triggered("approval.requested")
    assert requested.properties["discount_percent"] == 25
    assert customer_mail(journey_harness) == []


def test_a_grant_releases_the_approved_offer(journey_harness):
    propose(journey_harness)
    journey_harness.advance(hours(3))
    journey_harness.emit("approval.granted", user_id="max", properties={"approved_by": "Dana"})

    (offer,) = customer_mail(journey_harness)
    assert (offer.template, offer.subject) == ("offer/approved", "25% off, just for you")
    assert offer.props == {"discount_percent": 25, "approved_by": "Dana"}
    assert journey_harness.run("approval-gate", "max").status == "completed"


@pytest.mark.parametrize(("granted", "sent"), [(15, 15), (40, 25), ("lots", 25)])
def test_an_approver_may_lower_the_discount_never_raise_it(journey_harness, granted, sent):
    propose(journey_harness)
    journey_harness.emit("approval.granted", user_id="max", properties={"discount_percent": granted})

    (offer,) = customer_mail(journey_harness)
    assert offer.props["discount_percent"] == sent


def test_without_approval_in_two_days_it_fails_safe_to_the_pre_approved_offer(journey_harness):
    propose(journey_harness)
    journey_harness.advance(hours(47))
    assert customer_mail(journey_harness) == []
    journey_harness.advance(hours(1))

    (fallback,) = customer_mail(journey_harness)
    assert fallback.template == "offer/standard" and fallback.props == {"discount_percent": 10}
    assert journey_harness.run("approval-gate", "max").status == "completed"
    # A grant that comes too late changes nothing.
    journey_harness.emit("approval.granted", user_id="max")
    assert len(customer_mail(journey_harness)) == 1


def test_the_fallback_never_exceeds_the_proposal(journey_harness):
    propose(journey_harness, discount=5)
    journey_harness.advance(days(2))

    assert customer_mail(journey_harness)[0].props == {"discount_percent": 5}


@pytest.mark.parametrize("discount", ["25", 0, 150, True, None])
def test_a_proposal_without_a_real_discount_does_not_enter(journey_harness, discount):
    assert propose(journey_harness, discount=discount) is None
    assert journey_harness.skip_reasons("approval-gate", "max") == ["trigger_conditions_not_met"]
    assert pages(journey_harness) == []


def test_an_unsubscribed_customer_gets_nothing_but_the_approver_is_still_paged(journey_harness):
    propose(journey_harness)
    contact_unsubscribe(contact=journey_harness.contact("max"))
    journey_harness.emit("approval.granted", user_id="max")

    assert len(pages(journey_harness)) == 1  # operator mail is never gated by the customer's consent
    assert journey_harness.emails(CUSTOMER) == []
    assert journey_harness.run("approval-gate", "max").status == "completed"


def test_cancelling_the_subscription_exits_mid_wait(journey_harness):
    propose(journey_harness)
    journey_harness.emit("subscription.cancelled", user_id="max")
    journey_harness.advance(days(3))

    run = journey_harness.run("approval-gate", "max")
    assert (run.status, run.exit_reason) == ("exited", "exit_on:subscription.cancelled")
    assert journey_harness.emails(CUSTOMER) == []


def test_a_retry_of_the_same_request_pages_once(journey_harness):
    propose(journey_harness)
    (requested,) = journey_harness.triggered("approval.requested")
    journey_harness._route(requested)  # the engine delivers the same request again

    assert len(pages(journey_harness)) == 1


def test_a_replay_while_waiting_neither_re_pages_nor_re_sends(journey_harness):
    run = propose(journey_harness)
    journey_harness.replay(run)
    journey_harness.emit("approval.granted", user_id="max")
    journey_harness.replay(run) if journey_harness.run("approval-gate", "max").is_live else None

    assert len(pages(journey_harness)) == 1
    assert len(journey_harness.triggered("approval.requested")) == 1
    assert len(customer_mail(journey_harness)) == 1
