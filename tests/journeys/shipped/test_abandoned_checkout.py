from __future__ import annotations

from journeys.durations import days, hours

CY = "cy@example.com"


def test_nudge_now_and_a_discount_tomorrow_if_they_did_not_come_back(journey_harness):
    journey_harness.start("conversion-abandoned-checkout", user_id="cy", email=CY)
    journey_harness.advance(days(1))

    sent = [e for e in journey_harness.emails(CY) if e.status == "sent"]
    assert [e.subject for e in sent] == ["You left something behind", "Still interested? Here's 10% off"]
    assert sent[1].props == {"discount_percent": 10}


def test_checkout_completed_exits_before_the_discount(journey_harness):
    journey_harness.start("conversion-abandoned-checkout", user_id="cy", email=CY)
    journey_harness.advance(hours(3))
    journey_harness.emit("checkout.completed", user_id="cy")
    journey_harness.advance(days(2))

    assert journey_harness.templates_sent_to(CY) == ["conversion-winback-offer"]
    assert journey_harness.run("conversion-abandoned-checkout", "cy").status == "exited"


def test_a_completed_checkout_seen_by_the_check_skips_the_discount(journey_harness, register):
    from dataclasses import replace

    from journeys.registry import registry

    register(replace(registry.get("conversion-abandoned-checkout"), id="checkout-no-exit", exit_on=()))
    journey_harness.emit("checkout.abandoned", user_id="cy", email=CY)
    journey_harness.advance(hours(5))
    journey_harness.emit("checkout.completed", user_id="cy")
    journey_harness.advance(days(1))

    mine = [e.subject for e in journey_harness.emails(CY) if e.run.journey_id == "checkout-no-exit"]
    assert mine == ["You left something behind"]


def test_once_per_seven_days(journey_harness):
    journey_harness.start("conversion-abandoned-checkout", user_id="cy", email=CY)
    journey_harness.advance(days(2))
    journey_harness.emit("checkout.abandoned", user_id="cy")
    assert journey_harness.skip_reasons("conversion-abandoned-checkout", "cy") == ["period_not_elapsed"]

    journey_harness.advance(days(5))
    journey_harness.emit("checkout.abandoned", user_id="cy")
    assert journey_harness.templates_sent_to(CY).count("conversion-winback-offer") == 3
