"""A contact's IANA time zone: the `timezone` contact property, checked against the tz database.

Quiet hours and local-time sleeps (`ctx.sleep_until(local_time="09:00")`) are evaluated in it; a
contact without one is in HOGSEND_DEFAULT_TIMEZONE.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

TIMEZONE_PROPERTY = "timezone"
TIMEZONE_EXAMPLE = "an IANA time zone name such as 'Europe/Berlin', 'America/New_York' or 'UTC'"


class UnknownTimeZone(ValueError):
    pass


class LocalTimeError(ValueError):
    """A time of day that is not one ('9pm', '25:00'); the message says what to write."""


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def timezone_problem(value: Any) -> str | None:
    """What is wrong with a time zone a client sent, in words; None for a known IANA zone."""
    if not isinstance(value, str) or not value.strip():
        return f"must be {TIMEZONE_EXAMPLE}; got {value!r}"
    try:
        _zone(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{value[:80]!r} is not a known time zone; send {TIMEZONE_EXAMPLE}"
    return None


def timezone_check(value: Any) -> str:
    problem = timezone_problem(value)
    if problem:
        raise UnknownTimeZone(problem)
    return value


def zone_named(name: str | None) -> ZoneInfo:
    """The zone of that name, or the default one for a missing or unknown name (a property set
    before validation existed must not stop a send)."""
    if name and isinstance(name, str):
        try:
            return _zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return _zone(settings.HOGSEND_DEFAULT_TIMEZONE)


def contact_zone(properties: dict[str, Any] | None) -> ZoneInfo:
    """The zone of a contact, from its properties."""
    return zone_named((properties or {}).get(TIMEZONE_PROPERTY))


# --- local wall-clock time ----------------------------------------------------------------------------------


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant the wall clock in `zone` shows `at` on `day`, in UTC.

    A time the clocks skip that day (02:30 when they jump from 02:00 to 03:00) is the moment as
    far past the jump as it would have been: 03:30. A time that happens twice (02:30 when they go
    back from 03:00 to 02:00) is its first occurrence.
    """
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone).replace(fold=0).astimezone(UTC)


def next_local_time(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first instant strictly after `after` at which `zone`'s wall clock shows `at` (one per
    day, even on a day that shows it twice)."""
    day = after.astimezone(zone).date()
    for offset in range(3):
        candidate = local_moment(day + timedelta(days=offset), at, zone)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a wall-clock time recurs every day")  # pragma: no cover


def parse_time_of_day(value: str | time, *, field: str) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise LocalTimeError(f"{field}: {value!r} is not a time of day; use 'HH:MM', e.g. '09:00'") from None
