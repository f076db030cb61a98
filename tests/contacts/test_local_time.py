"""Local wall-clock times across daylight-saving changes (Europe/Berlin and America/New_York, 2026)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from contacts.timezones import local_moment, next_local_time
from emails.policy import QuietWindow

BERLIN = ZoneInfo("Europe/Berlin")  # 29 March 02:00 → 03:00; 25 October 03:00 → 02:00
NEW_YORK = ZoneInfo("America/New_York")  # 8 March 02:00 → 03:00; 1 November 02:00 → 01:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        (BERLIN, utc(2026, 3, 28, 7), utc(2026, 3, 29, 7)),  # 09:00 CET = 08:00Z, then CEST = 07:00Z
        (NEW_YORK, utc(2026, 3, 7, 13), utc(2026, 3, 8, 13)),  # 09:00 EST = 14:00Z, then EDT = 13:00Z
    ],
)
def test_next_nine_oclock_is_nine_on_the_wall_clock_on_both_sides_of_the_spring_change(zone, before, after):
    first = next_local_time(before, time(9), zone)
    second = next_local_time(first, time(9), zone)

    assert first.astimezone(zone).time() == time(9)
    assert second == after
    assert second.astimezone(zone).time() == time(9)
    assert (second - first).total_seconds() == 23 * 3600  # the day the clocks jump is an hour short


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (BERLIN, date(2026, 10, 24), utc(2026, 10, 25, 8)),  # 09:00 CET after the autumn change
        (NEW_YORK, date(2026, 10, 31), utc(2026, 11, 1, 14)),  # 09:00 EST
    ],
)
def test_next_nine_oclock_after_the_autumn_change_is_a_25_hour_day_later(zone, day, expected):
    first = next_local_time(local_moment(day, time(8), zone), time(9), zone)

    assert next_local_time(first, time(9), zone) == expected
    assert (expected - first).total_seconds() == 25 * 3600


def test_a_time_the_clocks_skip_is_taken_as_far_past_the_jump():
    # 02:30 does not exist in Berlin on 29 March 2026: it is 03:30 CEST (01:30Z), not 01:30 or never.
    assert local_moment(date(2026, 3, 29), time(2, 30), BERLIN) == utc(2026, 3, 29, 1, 30)
    assert next_local_time(utc(2026, 3, 28, 12), time(2, 30), BERLIN) == utc(2026, 3, 29, 1, 30)
    assert local_moment(date(2026, 3, 8), time(2, 30), NEW_YORK) == utc(2026, 3, 8, 7, 30)  # 03:30 EDT


def test_a_time_that_happens_twice_is_its_first_occurrence_and_comes_once_that_day():
    # 02:30 happens twice in Berlin on 25 October 2026: 02:30 CEST (00:30Z) and 02:30 CET (01:30Z).
    first = next_local_time(utc(2026, 10, 24, 12), time(2, 30), BERLIN)
    assert first == utc(2026, 10, 25, 0, 30)
    assert next_local_time(first, time(2, 30), BERLIN) == utc(2026, 10, 26, 1, 30)  # not 01:30Z that day
    # 01:30 happens twice in New York on 1 November 2026.
    assert local_moment(date(2026, 11, 1), time(1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_a_quiet_window_across_midnight_ends_at_its_local_end_across_a_dst_change():
    window = QuietWindow(start=time(21), end=time(8))

    # 22:00 CET on 28 March → held until 08:00 CEST on 29 March (06:00Z): a night an hour short.
    assert window.hold_until(utc(2026, 3, 28, 21), BERLIN) == utc(2026, 3, 29, 6)
    # 02:30 on the night New York falls back (the first 01:30 EDT) → 08:00 EST (13:00Z).
    assert window.hold_until(utc(2026, 11, 1, 5, 30), NEW_YORK) == utc(2026, 11, 1, 13)
    assert window.hold_until(utc(2026, 11, 1, 13), NEW_YORK) is None  # 08:00 sharp is outside
    assert window.hold_until(utc(2026, 11, 1, 20), NEW_YORK) is None  # 15:00 EST


def test_a_daytime_window_holds_until_its_end_the_same_day():
    window = QuietWindow(start=time(12), end=time(14))

    assert window.hold_until(utc(2026, 6, 1, 10, 30), BERLIN) == utc(2026, 6, 1, 12)  # 12:30 CEST
    assert window.hold_until(utc(2026, 6, 1, 12, 30), BERLIN) is None
