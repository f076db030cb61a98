"""The send-time policy every message obeys: quiet hours and frequency caps, in the recipient's zone.

Settings (read once into memory; `override_settings` in tests re-reads them):

```
HOGSEND_QUIET_HOURS = {"marketing": ("21:00", "08:00"), "*": ("22:00", "07:00")}
HOGSEND_FREQUENCY_CAPS = {"marketing": [(2, "24h"), (5, "7d")]}
```

- Quiet hours: a send whose moment falls inside its category's window (or the global "*" one) in
  the recipient's time zone is written `held` with `held_until` = the window's end, and delivered
  then (emails.tasks.email_release_task with that eta; the sweep is the safety net). Transactional
  and confirmation mail are exempt from "*"; only a window named for them applies to them.
- Frequency caps: at most N sends of a category to one contact within any span of the window.
  A send counts at the moment it goes out (`held_until` for a held one, else when it was
  written), before or after the new one, so a deferred send reserves its future slot. The check
  and the insert happen under one transaction-scoped advisory lock per (contact, category): two
  sends racing for the last slot are serialised, and the second sees the first. A capped send is
  skipped (`frequency_capped`) or, with `on_cap="defer"`, held until the next free slot. A send of
  higher priority takes the slot of a lower-priority one still held (not gone yet); that one
  moves to the next free slot (or is skipped, if its source chose "skip"). Transactional and confirmation
  mail are never capped.

A category with neither policy costs no statement at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connection
from django.db.models import Q
from django.dispatch import receiver

from contacts.categories import CONFIRMATION, TRANSACTIONAL
from contacts.timezones import LocalTimeError, local_moment, next_local_time, parse_time_of_day

EXEMPT = frozenset({TRANSACTIONAL, CONFIRMATION})
GLOBAL = "*"
ON_CAP_CHOICES = ("skip", "defer")
QUIET_HOURS_REASON = "quiet_hours"
CAPPED_REASON = "frequency_capped"
# Statuses of a send that went out or will: each takes a slot under a cap.
COUNTED = (
    "held",
    "queued",
    "sending",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unknown",
)
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PolicyError(ValueError):
    """A send-time option a caller passed that makes no sense (the message says what to pass)."""


def parse_span(value: str | int | float | timedelta, *, field: str) -> timedelta:
    """A window length: a timedelta, seconds, or '30m' / '24h' / '7d' / '2w'."""
    if isinstance(value, timedelta):
        span = value
    elif isinstance(value, int | float):
        span = timedelta(seconds=value)
    else:
        match = _SPAN.match(str(value))
        if not match:
            raise ImproperlyConfigured(f"{field}: {value!r} is not a span; use e.g. '24h', '7d' or seconds")
        span = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if span <= timedelta(0):
        raise ImproperlyConfigured(f"{field}: the window must be longer than zero")
    return span


# --- the policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietWindow:
    start: time
    end: time

    def hold_until(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """When this window ends if `moment` falls inside it in `zone`, else None."""
        local = moment.astimezone(zone)
        wall = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            inside, end_day = self.start <= wall < self.end, local.date()
        else:  # across midnight: 21:00 → 08:00
            inside = wall >= self.start or wall < self.end
            end_day = local.date() + timedelta(days=1) if wall >= self.start else local.date()
        if not inside:
            return None
        end = local_moment(end_day, self.end, zone)
        return end if end > moment else next_local_time(moment, self.end, zone)

    def contains(self, moment: datetime, zone: ZoneInfo) -> bool:
        return self.hold_until(moment, zone) is not None


@dataclass(frozen=True)
class Cap:
    limit: int
    window: timedelta


@dataclass(frozen=True)
class SendPolicy:
    quiet_hours: dict[str, QuietWindow]
    caps: dict[str, tuple[Cap, ...]]

    @property
    def active(self) -> bool:
        """Whether any send can be held or capped at all."""
        return bool(self.quiet_hours or self.caps)

    def quiet_window(self, category: str) -> QuietWindow | None:
        if category in self.quiet_hours:
            return self.quiet_hours[category]
        return None if category in EXEMPT else self.quiet_hours.get(GLOBAL)

    def caps_for(self, category: str) -> tuple[Cap, ...]:
        return () if category in EXEMPT else self.caps.get(category, ())


def _quiet_hours(raw: Any) -> dict[str, QuietWindow]:
    if not isinstance(raw, dict):
        raise ImproperlyConfigured('HOGSEND_QUIET_HOURS must be a dict: {"marketing": ("21:00", "08:00")}')
    windows = {}
    for category, spec in raw.items():
        field = f"HOGSEND_QUIET_HOURS[{category!r}]"
        if not isinstance(spec, list | tuple) or len(spec) != 2:
            raise ImproperlyConfigured(f"{field} must be a (start, end) pair such as ('21:00', '08:00')")
        try:
            start, end = (parse_time_of_day(v, field=field) for v in spec)
        except LocalTimeError as error:
            raise ImproperlyConfigured(str(error)) from None
        if start == end:
            raise ImproperlyConfigured(f"{field}: start and end are the same time; leave the category out")
        windows[str(category)] = QuietWindow(start=start, end=end)
    return windows


def _caps(raw: Any) -> dict[str, tuple[Cap, ...]]:
    if not isinstance(raw, dict):
        raise ImproperlyConfigured('HOGSEND_FREQUENCY_CAPS must be a dict: {"marketing": [(2, "24h")]}')
    caps = {}
    for category, specs in raw.items():
        field = f"HOGSEND_FREQUENCY_CAPS[{category!r}]"
        if category in EXEMPT or category == GLOBAL:
            raise ImproperlyConfigured(
                f"{field}: caps are per category, and {TRANSACTIONAL} and {CONFIRMATION} mail are never capped"
            )
        parsed = []
        for spec in specs:
            if (
                not isinstance(spec, list | tuple)
                or len(spec) != 2
                or not isinstance(spec[0], int)
                or spec[0] < 1
            ):
                raise ImproperlyConfigured(
                    f"{field} takes (count, window) pairs such as (2, '24h'); got {spec!r}"
                )
            parsed.append(Cap(limit=spec[0], window=parse_span(spec[1], field=field)))
        if parsed:
            caps[str(category)] = tuple(parsed)
    return caps


@lru_cache(maxsize=1)
def send_policy() -> SendPolicy:
    return SendPolicy(
        quiet_hours=_quiet_hours(getattr(settings, "HOGSEND_QUIET_HOURS", {}) or {}),
        caps=_caps(getattr(settings, "HOGSEND_FREQUENCY_CAPS", {}) or {}),
    )


@receiver(setting_changed)
def _policy_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("HOGSEND_QUIET_HOURS", "HOGSEND_FREQUENCY_CAPS"):
        send_policy.cache_clear()


# --- deciding one send ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyDecision:
    status: str  # "queued" | "held" | "skipped"
    held_until: datetime | None = None
    reason: str = ""
    # Lower-priority held sends whose slot this one takes: (email id, new held_until or None = skip).
    bumped: tuple[tuple[Any, datetime | None], ...] = ()


QUEUE = PolicyDecision(status="queued")


def on_cap_check(on_cap: str) -> str:
    if on_cap not in ON_CAP_CHOICES:
        raise PolicyError(
            f"on_cap must be one of {', '.join(repr(c) for c in ON_CAP_CHOICES)}; got {on_cap!r}"
        )
    return on_cap


def _fits(moment: datetime, taken: Sequence[datetime], caps: Iterable[Cap]) -> bool:
    """Whether one more send at `moment` keeps every span of every window within its limit
    (counting sends on both sides, so a span that starts before `moment` or after it holds too)."""
    return all(
        sum(1 for t in taken if moment - cap.window < t < moment + cap.window) < cap.limit for cap in caps
    )


def _next_free(moment: datetime, taken: Sequence[datetime], caps: Sequence[Cap]) -> datetime:
    """The first moment from `moment` on where a send fits: a slot frees when a send leaves a window."""
    if _fits(moment, taken, caps):
        return moment
    candidates = sorted({t + cap.window for t in taken for cap in caps if t + cap.window > moment})
    for candidate in candidates:
        if _fits(candidate, taken, caps):
            return candidate
    raise AssertionError("unreachable: past the last send plus the longest window every cap is free")


def _place(
    moment: datetime,
    taken: Sequence[datetime],
    caps: Sequence[Cap],
    window: QuietWindow | None,
    zone: ZoneInfo,
) -> datetime:
    """The first moment from `moment` that is outside quiet hours and has a free slot."""
    for _ in range(64):
        free = _next_free(moment, taken, caps)
        quiet_end = window.hold_until(free, zone) if window else None
        if quiet_end is None:
            return free
        moment = quiet_end
    return moment  # pragma: no cover - a cap and a window that never leave a slot free


def send_policy_decide(
    *,
    category: str,
    contact: Any | None,
    to: str,
    now: datetime,
    priority: int = 0,
    on_cap: str = "skip",
) -> PolicyDecision:
    """Where this send goes under the policy; call it inside the transaction that inserts the row.

    1. No window and no cap for the category: queued (no statement).
    2. Quiet hours: inside the window in the recipient's zone → held until it ends.
    3. Caps: take the (contact, category) advisory lock for the rest of the transaction, read the
       moments of the sends that take a slot within the longest window around now, and fit this
       one in: it fits → as decided so far; else a lower-priority send still held gives up
       its slot; else skip, or hold to the next free slot outside quiet hours (`defer`).
    """
    policy = send_policy()
    window = policy.quiet_window(category)
    caps = policy.caps_for(category)
    if window is None and not caps:
        return QUEUE
    from contacts.timezones import contact_zone

    zone = contact_zone(contact.properties if contact is not None else None)
    moment, reason = now, ""
    if window is not None and (quiet_end := window.hold_until(now, zone)) is not None:
        moment, reason = quiet_end, QUIET_HOURS_REASON
    if caps:
        taken = _slots_lock_and_read(
            category=category, contact=contact, to=to, since=now - max(c.window for c in caps)
        )
        times = [t for _, t, _, _ in taken]
        if not _fits(moment, times, caps):
            bumped = _bump(moment, taken, caps, window, zone, priority=priority)
            if bumped is not None:
                return _decision(now, moment, reason, bumped=bumped)
            if on_cap == "skip":
                return PolicyDecision(status="skipped", reason=CAPPED_REASON)
            moment, reason = _place(moment, times, caps, window, zone), CAPPED_REASON
    return _decision(now, moment, reason)


def _decision(now: datetime, moment: datetime, reason: str, *, bumped: tuple = ()) -> PolicyDecision:
    if moment > now:
        return PolicyDecision(status="held", held_until=moment, reason=reason, bumped=bumped)
    return PolicyDecision(status="queued", bumped=bumped)


def _bump(
    moment: datetime,
    taken: list[tuple[Any, datetime, int, str]],
    caps: Sequence[Cap],
    window: QuietWindow | None,
    zone: ZoneInfo,
    *,
    priority: int,
) -> tuple[tuple[Any, datetime | None], ...] | None:
    """A lower-priority send still held whose slot would let this one fit moves on (to the next
    free slot, or skipped if its source chose "skip"); the lowest priority, latest one goes."""
    movable = sorted(
        (row for row in taken if row[0] is not None and row[2] < priority),
        key=lambda row: (row[2], -row[1].timestamp()),
    )
    for email_id, _, _, row_on_cap in movable:
        rest = [t for pk, t, _, _ in taken if pk != email_id]
        if not _fits(moment, rest, caps):
            continue
        if row_on_cap == "skip":
            return ((email_id, None),)
        return ((email_id, _place(moment, [*rest, moment], caps, window, zone)),)
    return None


def _slots_lock_and_read(
    *, category: str, contact: Any | None, to: str, since: datetime
) -> list[tuple[Any, datetime, int, str]]:
    """Lock (contact, category) until commit, then read its sends that take a slot: (id if still
    held — a slot that may be given up —, moment, priority, on_cap)."""
    from emails.models import EmailLog

    who = str(contact.pk) if contact is not None else to.strip().lower()
    with connection.cursor() as cursor:
        # The lock's own statement: the read below must take its snapshot after the lock is held,
        # or it could miss a send committed by the holder it waited for.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"emails.cap:{category}:{who}"]
        )
    rows = EmailLog.objects.filter(category=category, status__in=COUNTED).filter(
        Q(created_at__gt=since) | Q(held_until__gt=since)
    )
    rows = rows.filter(contact=contact) if contact is not None else rows.filter(to_email__iexact=to)
    slots = []
    for pk, status, created_at, held_until, priority, on_cap in rows.values_list(
        "pk", "status", "created_at", "held_until", "priority", "on_cap"
    ):
        movable = status == "held"  # not gone yet: a higher priority may take its slot
        slots.append((pk if movable else None, held_until or created_at, priority, on_cap))
    return slots


def policy_check() -> None:
    """Read the settings once at startup, so a wrong policy fails the boot, not the first send."""
    from contacts.timezones import timezone_problem

    problem = timezone_problem(settings.HOGSEND_DEFAULT_TIMEZONE)
    if problem:
        raise ImproperlyConfigured(f"HOGSEND_DEFAULT_TIMEZONE: {problem}")
    send_policy()


def held_until_text(log: Any) -> str:
    """ "held until …" as the Studio says it: the moment on the recipient's wall clock and in UTC."""
    from contacts.timezones import contact_zone

    if log.held_until is None:
        return ""
    zone = contact_zone(log.contact.properties if log.contact_id and log.contact else None)
    local = log.held_until.astimezone(zone)
    text = f"held until {local:%Y-%m-%d %H:%M} {zone.key}"
    if zone.key != "UTC":
        text += f" ({log.held_until.astimezone(UTC):%H:%M} UTC)"
    return text
