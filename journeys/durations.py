"""Durations a journey speaks in, and the one place they become wall-clock time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings


@dataclass(frozen=True, order=True)
class Duration:
    """A span of journey time. Build one with `days`, `hours`, `minutes` or `seconds`."""

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("a duration cannot be negative")

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.seconds + other.seconds)

    def __str__(self) -> str:
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.seconds >= size and self.seconds % size == 0:
                return f"{int(self.seconds // size)}{unit}"
        return f"{self.seconds:g}s"

    def as_timedelta(self) -> timedelta:
        """The duration as written, ignoring time compression (the harness's virtual time)."""
        return timedelta(seconds=self.seconds)


def days(n: float) -> Duration:
    return Duration(n * 86400)


def hours(n: float) -> Duration:
    return Duration(n * 3600)


def minutes(n: float) -> Duration:
    return Duration(n * 60)


def seconds(n: float) -> Duration:
    return Duration(float(n))


def journey_time(duration: Duration) -> timedelta:
    """Wall-clock length of a journey duration, after `HOGSEND_TIME_SCALE` compression.

    Every journey duration (sleeps, wait timeouts, lookbacks, suppress windows, entry periods,
    history windows) goes through here, so one setting makes days play out in seconds.
    """
    scale = float(getattr(settings, "HOGSEND_TIME_SCALE", 1.0) or 1.0)
    return timedelta(seconds=duration.seconds / scale)
