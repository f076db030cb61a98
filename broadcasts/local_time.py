"""Broadcasts at a wall-clock time in each recipient's own time zone ("10:00 on 2026-12-10").

Such a broadcast starts (its recipients written) at the earliest moment that wall-clock time
happens anywhere on earth (UTC+14); each recipient row then gets its own `due_at`, the moment its
contact's zone (the `timezone` property, HOGSEND_DEFAULT_TIMEZONE without a valid one) shows that
time on that date, with the same DST rules as a journey's `ctx.sleep_until(local_time=…)`
(`contacts.timezones.local_moment`: a time the clocks skip is as far past the jump as it would
have been, 02:30 → 03:30; a time that happens twice is its first occurrence). Workers claim only
due recipients.

A recipient whose moment has already passed when the broadcast starts (the date is today and its
zone is past 10:00, or the date is past) is due at once: it is sent now, not the next day.

The moments are computed once per distinct zone of the audience (a handful, however many
recipients) and written with one UPDATE … FROM unnest.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import connection

from contacts.timezones import TIMEZONE_PROPERTY, local_moment, zone_named

LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# The zone whose clocks are furthest ahead (Pacific/Kiritimati): where a wall-clock time comes first.
EARLIEST_ZONE = ZoneInfo("Etc/GMT-14")


class LocalTimeProblem(ValueError):
    pass


def local_time_parse(value: Any) -> time:
    """'HH:MM' (or a time) as a time of day; LocalTimeProblem says what to write."""
    if isinstance(value, time):
        return value.replace(tzinfo=None, second=0, microsecond=0)
    if not isinstance(value, str) or not re.match(LOCAL_TIME_PATTERN, value):
        raise LocalTimeProblem(f"{value!r} is not a time of day; use 'HH:MM' (24 h), e.g. '10:00'")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def local_date_parse(value: Any) -> date:
    if isinstance(value, datetime):
        raise LocalTimeProblem(f"{value!r} is a moment; give a date, 'YYYY-MM-DD'")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise LocalTimeProblem(f"{value!r} is not a date; use 'YYYY-MM-DD', e.g. '2026-12-10'") from None


def due_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """When `zone` shows `at` on `day`, in UTC; the first and last days of the calendar, whose
    moment lies outside what a datetime holds, clamp to its ends."""
    try:
        return local_moment(day, at, zone)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if day.year == 1 else datetime.max.replace(tzinfo=UTC)


def earliest_moment(day: date, at: time) -> datetime:
    """The first moment any zone shows `at` on `day`: when the broadcast starts."""
    return due_moment(day, at, EARLIEST_ZONE)


def recipients_schedule(*, broadcast_id: UUID, day: date, at: time) -> int:
    """Give each recipient of the broadcast its `due_at` (one read of the audience's distinct
    zones, one UPDATE); returns how many rows got one."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT coalesce(c.properties ->> %s, '')
            FROM broadcasts_broadcastrecipient r JOIN contacts_contact c ON c.id = r.contact_id
            WHERE r.broadcast_id = %s
            """,
            [TIMEZONE_PROPERTY, broadcast_id],
        )
        names = [row[0] for row in cursor.fetchall()]
        if not names:
            return 0
        dues = [due_moment(day, at, zone_named(name)) for name in names]
        cursor.execute(
            """
            UPDATE broadcasts_broadcastrecipient r SET due_at = z.due
            FROM contacts_contact c, unnest(%s::text[], %s::timestamptz[]) AS z(name, due)
            WHERE r.broadcast_id = %s AND c.id = r.contact_id
              AND coalesce(c.properties ->> %s, '') = z.name
            """,
            [names, dues, broadcast_id, TIMEZONE_PROPERTY],
        )
        return cursor.rowcount
