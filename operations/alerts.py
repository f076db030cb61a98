"""Alert rules: each measures one thing and says, per subject, whether it is past its threshold.

Thresholds live in settings (ALERT_*); `operations.services.alerts_evaluate` turns measurements
into incidents that fire once and resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from operations import selectors


@dataclass(frozen=True)
class Measurement:
    rule: str
    value: float
    threshold: float
    breached: bool
    summary: str
    subject: str = ""


def _since(now: datetime) -> datetime:
    return now - timedelta(minutes=settings.ALERT_WINDOW_MINUTES)


def _window() -> str:
    return f"the last {settings.ALERT_WINDOW_MINUTES} min"


def rule_bounce_rate(now: datetime) -> list[Measurement]:
    window = selectors.send_window(since=_since(now))
    threshold = settings.ALERT_BOUNCE_RATE
    rate = window.bounce_rate
    return [
        Measurement(
            "bounce_rate",
            rate,
            threshold,
            window.sent >= settings.ALERT_MIN_SENDS and rate > threshold,
            f"bounce rate {rate:.2%} over {window.sent} sends in {_window()} (threshold {threshold:.2%})",
        )
    ]


def rule_complaint_rate(now: datetime) -> list[Measurement]:
    window = selectors.send_window(since=_since(now))
    threshold = settings.ALERT_COMPLAINT_RATE
    rate = window.complaint_rate
    return [
        Measurement(
            "complaint_rate",
            rate,
            threshold,
            window.sent >= settings.ALERT_MIN_SENDS and rate > threshold,
            f"complaint rate {rate:.3%} over {window.sent} sends in {_window()} "
            f"(mailbox providers start rejecting above {threshold:.1%})",
        )
    ]


def rule_failed_sends(now: datetime) -> list[Measurement]:
    failed = selectors.send_window(since=_since(now)).failed
    threshold = settings.ALERT_FAILED_SENDS
    return [
        Measurement(
            "failed_sends",
            failed,
            threshold,
            failed >= threshold,
            f"{failed} sends failed in {_window()} (threshold {threshold}); check the provider",
        )
    ]


def rule_outbox_lag(now: datetime) -> list[Measurement]:
    backlog = selectors.outbox_backlog(now=now)
    threshold = settings.ALERT_OUTBOX_LAG_SECONDS
    return [
        Measurement(
            "outbox_lag",
            backlog.oldest_age_seconds,
            threshold,
            backlog.oldest_age_seconds > threshold,
            f"{backlog.pending} events pending, the oldest for {backlog.oldest_age_seconds:.0f}s "
            f"(threshold {threshold}s); check the engine and the workers",
        )
    ]


def rule_no_live_worker(now: datetime) -> list[Measurement]:
    from journeys.runtime.worker import worker_heartbeats

    live = len(worker_heartbeats())
    return [
        Measurement(
            "no_live_worker",
            live,
            1,
            live == 0,
            "no journey worker is alive: journeys are not running" if live == 0 else f"{live} live workers",
        )
    ]


def rule_journey_failing(now: datetime) -> list[Measurement]:
    threshold = settings.ALERT_JOURNEY_FAILURES
    return [
        Measurement(
            "journey_failing",
            n,
            threshold,
            n >= threshold,
            f"journey {journey} failed {n} times in {_window()} (threshold {threshold})",
            subject=journey,
        )
        for journey, n in selectors.journey_failures(since=_since(now)).items()
    ]


def rule_destination_dead_letters(now: datetime) -> list[Measurement]:
    threshold = settings.ALERT_DEAD_LETTERS
    return [
        Measurement(
            "destination_dead_letters",
            n,
            threshold,
            n >= threshold,
            f"destination {destination} dead-lettered {n} deliveries in {_window()}",
            subject=destination,
        )
        for destination, n in selectors.destination_dead_letters(since=_since(now)).items()
    ]


RULES: list[Callable[[datetime], list[Measurement]]] = [
    rule_bounce_rate,
    rule_complaint_rate,
    rule_failed_sends,
    rule_outbox_lag,
    rule_no_live_worker,
    rule_journey_failing,
    rule_destination_dead_letters,
]
