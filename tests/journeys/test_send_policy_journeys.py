"""Journeys under the send-time policy: local-time sleeps, held sends a journey waits for, caps
across journeys, on the virtual-time harness (the real database and send pipeline)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from emails.models import EmailLog
from journeys.definition import define_journey
from journeys.durations import hours
from journeys.send import send_email
from journeys.testing import JourneyHarness

Status = EmailLog.Status
SEEN: dict[str, list] = {}
# A Saturday evening in Berlin (CET) before the spring change; 29 March 2026 is an hour short.
BEFORE_SPRING = datetime(2026, 3, 28, 18, 0, tzinfo=UTC)


@define_journey(id="policy-morning", name="Morning", trigger="go", entry_limit="unlimited")
async def morning(user, ctx):
    first = await ctx.sleep_until(local_time="09:00")
    second = await ctx.sleep_until(time(9))
    SEEN.setdefault(user.id, []).extend([first.resumed_at, second.resumed_at])


@define_journey(
    id="policy-notify", name="Notify", trigger="notify", entry_limit="unlimited", category="product-updates"
)
async def notify(user, ctx):
    sent = await send_email(to=user.email, template="activation/welcome", props={"first_name": "Ada"})
    SEEN.setdefault(user.id, []).append(sent)
    await ctx.checkpoint("after-send")


@define_journey(
    id="policy-urgent",
    name="Urgent",
    trigger="urgent",
    entry_limit="unlimited",
    category="product-updates",
    priority=10,
    on_cap="defer",
)
async def urgent(user, ctx):
    await send_email(to=user.email, template="activation/welcome", props={"first_name": "Ada"})


@pytest.fixture(autouse=True)
def _clean():
    SEEN.clear()


def test_sleep_until_a_local_time_wakes_at_nine_on_the_contacts_wall_clock_across_the_dst_change(
    db, journey_register
):
    journey_register(morning)
    with JourneyHarness(start=BEFORE_SPRING) as harness:
        harness.emit("go", user_id="ada", contact_properties={"timezone": "Europe/Berlin"})
        harness.emit("go", user_id="bob", contact_properties={"timezone": "America/New_York"})
        harness.advance(timedelta(days=3))

    # 09:00 CET on the 28th is past (19:00 CET): 09:00 on the 29th is CEST (07:00Z), then the 30th.
    assert SEEN["ada"] == [datetime(2026, 3, 29, 7, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC)]
    # New York changed on 8 March: 09:00 EDT is 13:00Z.
    assert SEEN["bob"] == [datetime(2026, 3, 29, 13, tzinfo=UTC), datetime(2026, 3, 30, 13, tzinfo=UTC)]


def test_a_local_time_sleep_replays_to_the_moment_it_first_chose(db, journey_register):
    journey_register(morning)
    with JourneyHarness(start=BEFORE_SPRING) as harness:
        harness.emit("go", user_id="ada", contact_properties={"timezone": "Europe/Berlin"})
        run = harness.run("policy-morning", "ada")
        harness.advance(hours(5))
        harness.replay(run)
        assert harness.parked()[0][2] == datetime(2026, 3, 29, 7, tzinfo=UTC)
        harness.advance(timedelta(days=2))

    assert SEEN["ada"][0] == datetime(2026, 3, 29, 7, tzinfo=UTC)


def test_a_journey_whose_send_is_held_waits_and_resumes_after_it_goes(db, settings, journey_register):
    settings.HOGSEND_QUIET_HOURS = {"product-updates": ("21:00", "08:00")}
    journey_register(notify)
    night = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)  # 22:00 in New York
    with JourneyHarness(start=night) as harness:
        harness.emit(
            "notify",
            user_id="ada",
            email="ada@example.com",
            contact_properties={"timezone": "America/New_York"},
        )
        run = harness.run("policy-notify", "ada")
        assert (run.status, run.current_node) == ("waiting", "held:activation/welcome")
        [held] = harness.held("ada@example.com")
        assert held.held_until == datetime(2026, 1, 6, 13, 0, tzinfo=UTC)  # 08:00 EST
        harness.replay(run)  # a replay mid-wait sends nothing and waits on
        assert harness.templates_sent_to("ada@example.com") == []
        harness.advance(hours(9) + timedelta(minutes=59))
        assert harness.templates_sent_to("ada@example.com") == []
        harness.advance(timedelta(minutes=1))

        assert harness.templates_sent_to("ada@example.com") == ["activation/welcome"]
        assert EmailLog.objects.get().sent_at == datetime(2026, 1, 6, 13, 0, tzinfo=UTC)
        run = harness.run("policy-notify", "ada")
        assert (run.status, run.current_node) == ("completed", "after-send")
        assert SEEN["ada"][-1].status == Status.SENT


def test_a_cap_spans_journeys_and_a_higher_priority_journey_takes_the_held_slot(
    db, settings, journey_register
):
    settings.HOGSEND_FREQUENCY_CAPS = {"product-updates": [(1, "24h")]}
    settings.HOGSEND_QUIET_HOURS = {"product-updates": ("21:00", "08:00")}
    journey_register(notify, urgent)
    night = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
    zone = {"timezone": "America/New_York"}
    with JourneyHarness(start=night) as harness:
        harness.emit("notify", user_id="ada", email="ada@example.com", contact_properties=zone)
        harness.emit("urgent", user_id="ada", email="ada@example.com", contact_properties=zone)
        harness.advance(hours(12))  # 10:00 in New York

        logs = {log.run.journey_id: log for log in EmailLog.objects.select_related("run")}
        # The urgent journey took the morning slot; the routine one, whose source skips on a cap, was skipped.
        assert (logs["policy-urgent"].status, logs["policy-urgent"].sent_at) == (
            Status.SENT,
            datetime(2026, 1, 6, 13, 0, tzinfo=UTC),
        )
        assert (logs["policy-notify"].status, logs["policy-notify"].status_reason) == (
            Status.SKIPPED,
            "frequency_capped",
        )
        assert harness.run("policy-notify", "ada").status == "completed"  # it went on without the email
        harness.emit("urgent", user_id="ada", email="ada@example.com", contact_properties=zone)
        [deferred] = harness.held("ada@example.com")
        assert deferred.held_until == datetime(2026, 1, 7, 13, 0, tzinfo=UTC)  # a day after the last
