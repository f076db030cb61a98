"""Broadcasts on the virtual-time harness (broadcasts.testing): the real tick and drains at the
harness's clock, each member of a segment mailed once at its own 10:00, caps and quiet hours
applied and shared with journeys, held sends released, the pace kept on the virtual clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audiences.segments import define_segment
from broadcasts.models import Broadcast
from broadcasts.services import broadcast_create, broadcast_pause
from broadcasts.templates import ANNOUNCEMENT
from broadcasts.testing import BroadcastDriver
from emails.models import EmailLog
from emails.services import email_send
from journeys.definition import define_journey
from journeys.send import send_email
from journeys.testing import JourneyHarness
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS

pytestmark = pytest.mark.django_db
README = Path(__file__).resolve().parents[2] / "README.md"
PRO = define_segment("harness-pro", name="Pro", where=lambda b: b.prop("plan").eq("pro"))
# The day Europe's clocks go forward (02:00 → 03:00 in Berlin and London's 01:00 → 02:00).
SPRING_DAY = "2026-03-29"


@define_journey(
    id="harness-news", name="News", trigger="news.asked", entry_limit="unlimited", category="product-updates"
)
async def news(user, ctx):
    await send_email(to=user.email, template="activation/welcome", props={"first_name": "Ada"})


@pytest.fixture(autouse=True)
def pro_segment(define):
    define(PRO)


def member(harness: JourneyHarness, user: str, zone: str = "UTC", plan: str = "pro") -> str:
    email = f"{user}@example.com"
    harness.emit(
        "plan.chosen", user_id=user, email=email, contact_properties={"plan": plan, "timezone": zone}
    )
    return email


def announce(**overrides) -> Broadcast:
    fields = {"name": "Sale", "template": ANNOUNCEMENT, "props": ANNOUNCEMENT_PROPS, "segment_id": PRO.id}
    return broadcast_create(**{**fields, **overrides})


def sent_at(emails: list[EmailLog]) -> dict[str, datetime | None]:
    return {e.to_email: e.sent_at for e in emails}


def test_each_member_gets_it_once_at_ten_on_their_own_clock_across_a_dst_change():
    with JourneyHarness(start=datetime(2026, 3, 28, 12, tzinfo=UTC)) as harness:
        tokyo, berlin = member(harness, "tokyo", "Asia/Tokyo"), member(harness, "berlin", "Europe/Berlin")
        london, new_york = (
            member(harness, "london", "Europe/London"),
            member(harness, "ny", "America/New_York"),
        )
        member(harness, "free", "Europe/Berlin", plan="free")
        broadcast = announce(local_time="10:00", local_date=SPRING_DAY, rate=0)
        assert broadcast.status == Broadcast.Status.SCHEDULED  # it starts at 10:00 in UTC+14

        sent = BroadcastDriver(harness).send(broadcast)

    assert sent.broadcast.status == Broadcast.Status.COMPLETED
    assert sent.broadcast.recipients_total == 4
    assert sent_at(sent.emails) == {
        tokyo: datetime(2026, 3, 29, 1, tzinfo=UTC),  # JST, no DST
        berlin: datetime(2026, 3, 29, 8, tzinfo=UTC),  # CEST since 01:00Z that morning
        london: datetime(2026, 3, 29, 9, tzinfo=UTC),  # BST since 01:00Z that morning
        new_york: datetime(2026, 3, 29, 14, tzinfo=UTC),  # EDT since 8 March
    }
    assert {e.status for e in sent.emails} == {EmailLog.Status.SENT}
    assert EmailLog.objects.filter(to_email="free@example.com").count() == 0
    assert sent.policy_breaches() == []


@pytest.mark.parametrize(
    ("on_cap", "outcome", "capped_sent_at"),
    [
        ("skip", ("skipped", "frequency_capped"), None),
        # Held for the next free slot (as the batch recorded it): it goes 24 h after the earlier
        # send, released by the harness.
        ("defer", ("held", "frequency_capped"), datetime(2026, 1, 6, 8, tzinfo=UTC)),
    ],
)
def test_a_capped_member_is_skipped_or_deferred_as_the_broadcast_says(
    settings, on_cap, outcome, capped_sent_at
):
    settings.HOGSEND_FREQUENCY_CAPS = {"product-updates": [(1, "24h")]}
    with JourneyHarness(start=datetime(2026, 1, 5, 8, tzinfo=UTC)) as harness:
        fresh, capped = member(harness, "fresh"), member(harness, "capped")
        email_send(to=capped, template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS, user_id="capped",
                   idempotency_key="earlier")  # fmt: skip
        harness.advance(timedelta(hours=2))

        sent = BroadcastDriver(harness).send(announce(on_cap=on_cap, rate=0))

    assert sent.outcomes()[fresh] == ("sent", "")
    assert sent.outcomes()[capped] == outcome
    assert sent_at(sent.emails) == {fresh: datetime(2026, 1, 5, 10, tzinfo=UTC), capped: capped_sent_at}
    assert sent.policy_breaches() == []


def test_a_send_held_by_quiet_hours_goes_out_when_they_end(settings):
    settings.HOGSEND_QUIET_HOURS = {"product-updates": ("21:00", "08:00")}
    night = datetime(2026, 1, 6, 3, tzinfo=UTC)  # 22:00 in New York, 12:00 in Tokyo
    with JourneyHarness(start=night) as harness:
        new_york, tokyo = member(harness, "ny", "America/New_York"), member(harness, "tokyo", "Asia/Tokyo")

        sent = BroadcastDriver(harness).send(announce(rate=0))

        assert harness.held() == []  # the driver returned once its held send had gone
    assert sent.outcomes()[new_york] == ("held", "quiet_hours")  # as the batch recorded it
    assert sent_at(sent.emails) == {tokyo: night, new_york: datetime(2026, 1, 6, 13, tzinfo=UTC)}
    assert sent.policy_breaches() == []


def test_a_journey_send_and_a_broadcast_share_the_cap(settings, journey_register):
    settings.HOGSEND_FREQUENCY_CAPS = {"product-updates": [(1, "24h")]}
    journey_register(news)
    with JourneyHarness(start=datetime(2026, 1, 5, 9, tzinfo=UTC)) as harness:
        ada = member(harness, "ada")
        harness.emit("news.asked", user_id="ada")  # the journey's send takes the day's one slot
        harness.advance(timedelta(hours=1))

        sent = BroadcastDriver(harness).send(announce(on_cap="defer", rate=0))

        journey_email, broadcast_email = harness.emails(ada)
    assert (journey_email.template, journey_email.sent_at) == (
        "activation/welcome",
        datetime(2026, 1, 5, 9, tzinfo=UTC),
    )
    assert (broadcast_email.template, broadcast_email.sent_at) == (
        ANNOUNCEMENT,
        datetime(2026, 1, 6, 9, tzinfo=UTC),
    )
    assert sent.policy_breaches() == []


def test_the_pace_is_kept_on_the_virtual_clock_and_nothing_sleeps(monkeypatch):
    def no_real_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s for real")

    monkeypatch.setattr("broadcasts.send.time.sleep", no_real_sleep)
    with JourneyHarness(start=datetime(2026, 1, 5, 9, tzinfo=UTC)) as harness:
        people = [member(harness, f"p{i}") for i in range(3)]

        sent = BroadcastDriver(harness).send(announce(rate=0.5))  # one send every 2 s

    moments = sent_at(sent.emails)
    assert sorted(moments) == sorted(people)  # each once, in the order the drain claims them
    assert sorted(moments.values()) == [
        datetime(2026, 1, 5, 9, tzinfo=UTC) + timedelta(seconds=2 * i) for i in range(len(people))
    ]


def test_without_the_driver_nothing_sends_a_local_time_broadcast():
    """The beat and the workers are the driver's part: the harness's clock alone moves nothing."""
    with JourneyHarness(start=datetime(2026, 1, 5, 9, tzinfo=UTC)) as harness:
        ada = member(harness, "ada", "Europe/Berlin")
        broadcast = announce(local_time="10:00", local_date="2026-01-06", rate=0)
        harness.advance(timedelta(days=2))
        assert harness.emails(ada) == []

        sent = BroadcastDriver(harness).send(broadcast)  # 10:00 in Berlin is past by now: at once

    assert sent_at(sent.emails) == {ada: datetime(2026, 1, 7, 9, tzinfo=UTC)}


def test_a_paused_broadcast_is_named_when_it_cannot_finish():
    with JourneyHarness(start=datetime(2026, 1, 5, 9, tzinfo=UTC)) as harness:
        member(harness, "ada", "Europe/Berlin")
        broadcast = announce(local_time="10:00", local_date="2026-01-06", rate=0)
        driver = BroadcastDriver(harness)
        harness.advance(timedelta(hours=12))
        driver.tick()  # started (its recipients written), none due yet
        broadcast_pause(broadcast_id=broadcast.pk)

        with pytest.raises(TimeoutError, match="'Sale' is paused"):
            driver.send(broadcast, within=timedelta(days=3))


def readme_example() -> str:
    text = README.read_text()
    section = text.split("\n### Testing a broadcast on the virtual-time harness\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return block


def test_the_readme_example_runs_as_written(journey_harness):
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0](journey_harness)
