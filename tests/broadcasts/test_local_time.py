"""A broadcast at a wall-clock time in each recipient's own zone: each recipient is due at its own
10:00 (DST-correct), workers take only the due, the tick keeps it running between zones, progress
counts the not-yet-due as scheduled; a zone already past the time is sent at once."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command

from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.selectors import broadcast_progress
from broadcasts.send import broadcast_drain, recipients_claim
from broadcasts.services import BroadcastError, broadcast_create
from broadcasts.templates import ANNOUNCEMENT
from broadcasts.ticks import broadcasts_tick
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS, recipients_of

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def announce(**overrides) -> Broadcast:
    fields = {"name": "Winter sale", "template": ANNOUNCEMENT, "props": ANNOUNCEMENT_PROPS, "rate": 0}
    return broadcast_create(**{**fields, **overrides})


def due_moments(broadcast: Broadcast) -> dict[str, datetime | None]:
    rows = BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("contact__email", "due_at")
    return dict(rows)


def tick_and_drain(moment: str) -> list:
    with time_machine.travel(at(moment), tick=True):
        tick = broadcasts_tick()
        for broadcast_id in tick.to_drain:
            broadcast_drain(broadcast_id=broadcast_id, seconds=30)
    return tick.to_drain


def test_each_recipient_gets_it_at_ten_in_its_own_zone(people, smtp_server, settings):
    settings.HOGSEND_DEFAULT_TIMEZONE = "UTC"
    # No stall rescue: the tick hands it to a drain because recipients came due after the last one.
    settings.BROADCAST_STALL_SECONDS = 7 * 24 * 3600
    (tokyo,) = people(1, properties={"timezone": "Asia/Tokyo"})
    (berlin,) = people(1, properties={"timezone": "Europe/Berlin"})
    (new_york,) = people(1, properties={"timezone": "America/New_York"})
    (nowhere,) = people(1, properties={"timezone": "Mars/Olympus"})  # an invalid zone: the default

    with time_machine.travel(at("2026-12-09T12:00:00"), tick=False):
        broadcast = announce(local_time="10:00", local_date="2026-12-10")
    assert broadcast.status == Broadcast.Status.SCHEDULED
    # It starts when 10:00 on that day first happens anywhere (UTC+14).
    assert broadcast.send_at == at("2026-12-09T20:00:00")
    assert tick_and_drain("2026-12-09T19:59:00") == []
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.SCHEDULED

    tick_and_drain("2026-12-09T20:00:30")
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.RUNNING
    assert due_moments(broadcast) == {
        tokyo.email: at("2026-12-10T01:00:00"),
        berlin.email: at("2026-12-10T09:00:00"),
        new_york.email: at("2026-12-10T15:00:00"),
        nowhere.email: at("2026-12-10T10:00:00"),
    }
    assert recipients_of(smtp_server) == []
    progress = broadcast_progress(broadcast=broadcast, now=at("2026-12-09T20:01:00"))
    assert (progress.remaining, progress.scheduled, progress.seconds_left) == (4, 4, None)

    # Nobody is due yet: the tick keeps it running and hands it to no drain; a drain takes nothing.
    assert tick_and_drain("2026-12-10T00:59:00") == []
    assert recipients_claim(broadcast_id=broadcast.pk, size=10, now=at("2026-12-10T00:59:00")) == []

    assert tick_and_drain("2026-12-10T01:00:05") == [broadcast.pk]
    assert recipients_of(smtp_server) == [tokyo.email]
    progress = broadcast_progress(broadcast=broadcast, now=at("2026-12-10T01:00:10"))
    assert (progress.sent, progress.remaining, progress.scheduled) == (1, 3, 3)

    tick_and_drain("2026-12-10T09:00:05")
    assert recipients_of(smtp_server) == sorted([tokyo.email, berlin.email])
    tick_and_drain("2026-12-10T10:00:05")
    assert recipients_of(smtp_server) == sorted([tokyo.email, berlin.email, nowhere.email])
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.RUNNING

    tick_and_drain("2026-12-10T15:00:05")
    assert recipients_of(smtp_server) == sorted(c.email for c in (tokyo, berlin, new_york, nowhere))
    tick_and_drain("2026-12-10T15:01:00")
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.COMPLETED
    assert broadcast_progress(broadcast=broadcast).sent == 4


def test_zones_already_past_the_time_are_sent_at_once_the_others_at_theirs(people, smtp_server):
    (tokyo,) = people(1, properties={"timezone": "Asia/Tokyo"})
    (berlin,) = people(1, properties={"timezone": "Europe/Berlin"})
    (new_york,) = people(1, properties={"timezone": "America/New_York"})

    with time_machine.travel(at("2026-12-10T12:00:00"), tick=True):
        broadcast = announce(local_time="10:00", local_date="2026-12-10")
        assert broadcast.status == Broadcast.Status.RUNNING  # its first moment is past: it starts now
        broadcast_drain(broadcast_id=broadcast.pk, seconds=30)
        assert recipients_of(smtp_server) == sorted([tokyo.email, berlin.email])
        assert broadcast_progress(broadcast=broadcast).scheduled == 1
        shown = io.StringIO()
        call_command("broadcast_progress", str(broadcast.pk), "--once", stdout=shown)
        assert "sent 2, held 0, skipped 0, remaining 1 (scheduled 1)" in shown.getvalue()

    tick_and_drain("2026-12-10T15:00:01")
    assert recipients_of(smtp_server) == sorted([tokyo.email, berlin.email, new_york.email])


@pytest.mark.parametrize(
    ("day", "wall_clock", "due"),
    [
        # Spring forward (02:00 → 03:00): 02:30 does not exist; it is 03:30 CEST.
        ("2027-03-28", "02:30", "2027-03-28T01:30:00"),
        # Fall back (03:00 → 02:00): 02:30 happens twice; the first, CEST.
        ("2026-10-25", "02:30", "2026-10-25T00:30:00"),
        # An ordinary time on the spring-forward day: 10:00 CEST.
        ("2027-03-28", "10:00", "2027-03-28T08:00:00"),
    ],
)
def test_a_dst_transition_day_moves_a_skipped_time_forward(people, day, wall_clock, due):
    (berlin,) = people(1, properties={"timezone": "Europe/Berlin"})
    with time_machine.travel(at(f"{day}T00:00:00").replace(day=1), tick=False):
        broadcast = announce(local_time=wall_clock, local_date=day, start=False)
    with time_machine.travel(broadcast.send_at, tick=True):
        broadcasts_tick()
    assert due_moments(broadcast) == {berlin.email: at(due)}


@pytest.mark.parametrize(
    ("when", "field"),
    [
        ({"local_time": "25:00", "local_date": "2026-12-10"}, "localTime"),
        ({"local_time": "9am", "local_date": "2026-12-10"}, "localTime"),
        ({"local_time": "10:00", "local_date": "2026-02-30"}, "localDate"),
    ],
)
def test_a_bad_local_time_names_its_field(people, when, field):
    with pytest.raises(BroadcastError) as raised:
        announce(**when)
    assert raised.value.field == field
    assert not Broadcast.objects.exists()


def test_without_a_date_it_is_the_next_day_the_time_is_ahead_everywhere(people):
    with time_machine.travel(at("2026-12-09T19:00:00"), tick=False):
        tonight = announce(local_time="10:00")  # 10:00 on the 10th is still ahead in UTC+14
        assert (str(tonight.local_date), tonight.send_at) == ("2026-12-10", at("2026-12-09T20:00:00"))
        later = announce(local_time="05:00")  # 05:00 on the 10th has come in UTC+14: the 11th
        assert str(later.local_date) == "2026-12-11"
        midnight = announce(local_date="2026-12-24")  # a day alone: its start in each zone
        assert str(midnight.local_time) == "00:00:00"


def test_send_at_sets_when_the_audience_is_read_the_local_time_when_each_gets_it(people):
    (berlin,) = people(1, properties={"timezone": "Europe/Berlin"})
    with time_machine.travel(at("2026-12-09T12:00:00"), tick=False):
        broadcast = announce(local_time="10:00", local_date="2026-12-10", send_at=at("2026-12-10T06:00:00"))
    assert broadcast.send_at == at("2026-12-10T06:00:00")
    with time_machine.travel(at("2026-12-10T06:00:01"), tick=False):
        broadcasts_tick()
    assert due_moments(broadcast) == {berlin.email: at("2026-12-10T09:00:00")}


def test_the_first_and_last_days_of_the_calendar_do_not_break_it(people):
    people(1, properties={"timezone": "America/New_York"})
    first = announce(local_time="00:00", local_date="0001-01-01")
    assert first.status == Broadcast.Status.RUNNING  # long past: sent at once
    last = announce(local_time="23:59", local_date="9999-12-31")
    assert last.status == Broadcast.Status.SCHEDULED
    announce(local_time="23:59", send_at=datetime.max.replace(tzinfo=UTC), start=False)


BODY = {"name": "Winter sale", "template": ANNOUNCEMENT, "props": ANNOUNCEMENT_PROPS, "rate": 0}


def test_the_admin_api_takes_local_time_and_says_what_is_wrong(admin, people):
    people(1, properties={"timezone": "Asia/Tokyo"})
    created = admin.post("/v1/admin/broadcasts", {**BODY, "localTime": "10:00", "localDate": "2099-12-10"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["localTime"], body["localDate"]) == ("scheduled", "10:00", "2099-12-10")
    assert body["sendAt"].startswith("2099-12-09T20:00:00")

    for change, field in [
        ({"localTime": "9:00", "localDate": "2099-12-10"}, "localTime"),
        ({"localTime": "10:00", "localDate": "2099-13-01"}, "localDate"),
        ({"localTime": None, "localDate": "2099-12-10"}, "localTime"),
    ]:
        response = admin.post("/v1/admin/broadcasts", {**BODY, **change})
        assert response.status_code == 422, (change, response.content)
        assert field in response.json()["detail"], (change, response.json())
    assert Broadcast.objects.count() == 1


def test_the_openapi_schema_declares_local_time_precisely(client):
    component = client.get("/v1/openapi.json").json()["components"]["schemas"]["BroadcastIn"]
    properties = component["properties"]
    assert properties["localTime"]["type"] == "string"
    assert properties["localTime"]["pattern"] == "^([01][0-9]|2[0-3]):[0-5][0-9]$"
    assert (properties["localDate"]["type"], properties["localDate"]["format"]) == ("string", "date")
    assert "null" not in json.dumps([properties["localTime"], properties["localDate"]])


def test_the_command_schedules_a_local_time_broadcast(people):
    people(1, properties={"timezone": "Europe/Berlin"})
    out = io.StringIO()
    call_command("broadcast_send", "Winter sale", "--template", ANNOUNCEMENT, "--props",
                 '{"headline": "Sale", "body": "Now.", "cta_url": "https://example.com/s"}',
                 "--local-time", "10:00", "--local-date", "2099-12-10", stdout=out)  # fmt: skip
    assert "scheduled" in out.getvalue()
    broadcast = Broadcast.objects.get()
    assert (str(broadcast.local_time), str(broadcast.local_date)) == ("10:00:00", "2099-12-10")
    with pytest.raises(CommandError, match="--local-time"):
        call_command("broadcast_send", "Bad", "--template", ANNOUNCEMENT, "--props",
                     '{"headline": "Sale", "body": "Now.", "cta_url": "https://example.com/s"}',
                     "--local-time", "24:00", "--local-date", "2099-12-10", stdout=io.StringIO())  # fmt: skip
