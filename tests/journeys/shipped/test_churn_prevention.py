from __future__ import annotations

from journeys.durations import days, hours

BO = "bo@example.com"


def subjects(harness):
    return [e.subject for e in harness.emails(BO) if e.status == "sent"]


def test_an_unresolved_failure_gets_notice_reminder_and_final_notice(journey_harness):
    journey_harness.start("churn-prevention", user_id="bo", email=BO)
    assert subjects(journey_harness) == ["Your payment didn't go through"]

    journey_harness.advance(days(1))
    assert subjects(journey_harness)[-1] == "Reminder: please update your payment method"
    assert journey_harness.emails(BO)[-1].props == {"grace_period_days": 2}

    journey_harness.advance(days(2))
    assert subjects(journey_harness)[-1] == "Final notice: your account will be downgraded tomorrow"
    assert journey_harness.run("churn-prevention", "bo").status == "completed"


def test_payment_succeeded_exits_at_once_even_mid_sleep(journey_harness):
    journey_harness.start("churn-prevention", user_id="bo", email=BO)
    journey_harness.advance(hours(30))
    journey_harness.emit("payment.succeeded", user_id="bo")
    journey_harness.advance(days(5))

    assert len(subjects(journey_harness)) == 2
    assert journey_harness.run("churn-prevention", "bo").status == "exited"


def test_subscription_cancelled_and_user_deleted_exit_too(journey_harness):
    for user, event in (("c1", "subscription.cancelled"), ("c2", "user.deleted")):
        journey_harness.start("churn-prevention", user_id=user, email=f"{user}@example.com")
        journey_harness.emit(event, user_id=user)
        assert journey_harness.run("churn-prevention", user).exit_reason == f"exit_on:{event}"


def test_a_fix_seen_by_the_day_one_check_ends_the_journey_quietly(journey_harness, register):
    """The history branch: a payment.succeeded that is not an exit (the exit rule was lifted)."""
    from dataclasses import replace

    from journeys.registry import registry

    churn = registry.get("churn-prevention")
    register(replace(churn, id="churn-no-exit", exit_on=()))
    journey_harness.emit("payment.failed", user_id="bo", email=BO)
    journey_harness.advance(hours(20))
    journey_harness.emit("payment.succeeded", user_id="bo")
    journey_harness.advance(days(4))

    no_exit = [e for e in journey_harness.emails(BO) if e.run.journey_id == "churn-no-exit"]
    assert [e.subject for e in no_exit] == ["Your payment didn't go through"]
    assert journey_harness.run("churn-no-exit", "bo").status == "completed"


def test_a_fix_before_the_final_notice_skips_it(journey_harness, register):
    from dataclasses import replace

    from journeys.registry import registry

    register(replace(registry.get("churn-prevention"), id="churn-no-exit", exit_on=()))
    journey_harness.emit("payment.failed", user_id="bo", email=BO)
    journey_harness.advance(days(2))
    journey_harness.emit("payment.succeeded", user_id="bo")
    journey_harness.advance(days(2))

    no_exit = [e.subject for e in journey_harness.emails(BO) if e.run.journey_id == "churn-no-exit"]
    assert no_exit == ["Your payment didn't go through", "Reminder: please update your payment method"]


def test_re_entry_waits_seven_days(journey_harness):
    journey_harness.start("churn-prevention", user_id="bo", email=BO)
    journey_harness.advance(days(4))
    journey_harness.emit("payment.failed", user_id="bo")
    assert journey_harness.skip_reasons("churn-prevention", "bo") == ["period_not_elapsed"]

    journey_harness.advance(days(3))
    journey_harness.emit("payment.failed", user_id="bo")
    assert journey_harness.run("churn-prevention", "bo").status == "waiting"


def test_a_contact_with_no_email_address_gets_each_send_recorded_as_skipped_and_the_run_goes_on(
    journey_harness,
):
    """A Stripe customer created without an email: every send says why it did not go out, the
    journey runs to its end, and destinations hear no failure."""
    from emails.models import EmailLog
    from integrations.models import Delivery, Destination

    Destination.objects.create(name="all", kind="webhook", url="https://hooks.example.com/h")
    journey_harness.emit("payment.failed", user_id="cus_NoEmail")  # no address anywhere
    journey_harness.advance(days(3))

    logs = EmailLog.objects.filter(contact__user_id="cus_NoEmail").order_by("created_at")
    assert [(log.status, log.status_reason, log.to_email) for log in logs] == [
        ("skipped", "no_email_address", "")
    ] * 3
    assert journey_harness.run("churn-prevention", "cus_NoEmail").status == "completed"
    fanned_out = set(Delivery.objects.values_list("event_type", flat=True))
    assert "journey.failed" not in fanned_out
    assert {"email.skipped", "journey.completed"} <= fanned_out
