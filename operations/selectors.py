"""Reads for the doctor, the alert rules, the metrics collector and the Studio charts."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from contacts.models import Event
from emails.models import EmailLog
from journeys.models import JourneyRun

# An email that left us: everything but queued, failed and suppressed (bounced/complained left too).
SENT_STATUSES = (
    EmailLog.Status.SENT,
    EmailLog.Status.DELIVERED,
    EmailLog.Status.OPENED,
    EmailLog.Status.CLICKED,
    EmailLog.Status.BOUNCED,
    EmailLog.Status.COMPLAINED,
)


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int
    oldest_age_seconds: float


def outbox_backlog(*, now: datetime | None = None) -> OutboxBacklog:
    """Pending events and the age of the oldest (both read through the partial pending index)."""
    now = now or timezone.now()
    pending = Event.objects.filter(dispatch_state=Event.DispatchState.PENDING)
    oldest = pending.order_by("received_at").values_list("received_at", flat=True).first()
    age = (now - oldest).total_seconds() if oldest else 0.0
    return OutboxBacklog(pending=pending.count(), oldest_age_seconds=max(age, 0.0))


@dataclass(frozen=True)
class SendWindow:
    sent: int
    bounced: int
    complained: int
    failed: int

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.sent if self.sent else 0.0


def send_window(*, since: datetime) -> SendWindow:
    """What became of the email created since `since` (one indexed scan of the window)."""
    counts = EmailLog.objects.filter(created_at__gte=since).aggregate(
        sent=Count("id", filter=Q(status__in=SENT_STATUSES)),
        bounced=Count("id", filter=Q(bounced_at__isnull=False)),
        complained=Count("id", filter=Q(complained_at__isnull=False)),
        failed=Count("id", filter=Q(status=EmailLog.Status.FAILED)),
    )
    return SendWindow(**counts)


def journey_failures(*, since: datetime) -> dict[str, int]:
    """Runs failed since `since`, per journey."""
    rows = (
        JourneyRun.objects.filter(status=JourneyRun.Status.FAILED, ended_at__gte=since)
        .values("journey_id")
        .annotate(n=Count("id"))
    )
    return {row["journey_id"]: row["n"] for row in rows}


def destination_dead_letters(*, since: datetime) -> dict[str, int]:
    """Dead-lettered deliveries per outbound destination, from the integrations app when installed.

    Read through the app's own selector so this module never depends on its tables; without the
    app (or the selector) there is nothing to dead-letter.
    """
    try:
        module = importlib.import_module("integrations.selectors")
    except ImportError:
        return {}
    reader = getattr(module, "dead_letters_by_destination", None)
    if reader is None:
        return {}
    return dict(reader(since=since))


def runs_by_journey_and_status() -> list[dict[str, Any]]:
    return list(JourneyRun.objects.order_by().values("journey_id", "status").annotate(n=Count("id")))


def emails_by_status_and_provider() -> list[dict[str, Any]]:
    return list(EmailLog.objects.order_by().values("status", "provider").annotate(n=Count("id")))


def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]


def sends_per_day(*, days: int = 30, today: date | None = None) -> list[dict[str, Any]]:
    """One row per day (oldest first): the day and its email count by status."""
    today = today or timezone.localdate()
    since = today - timedelta(days=days - 1)
    rows = (
        EmailLog.objects.filter(created_at__date__gte=since)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day", "status")
        .annotate(n=Count("id"))
    )
    by_day: dict[date, dict[str, int]] = {d: {} for d in _days(since, today)}
    for row in rows:
        by_day.setdefault(row["day"], {})[row["status"]] = row["n"]
    return [{"day": d, "counts": by_day[d]} for d in sorted(by_day)]


def deliverability_per_day(*, days: int = 30, today: date | None = None) -> list[dict[str, Any]]:
    """Per day: emails that left, and the share of them that bounced or drew a complaint."""
    today = today or timezone.localdate()
    since = today - timedelta(days=days - 1)
    rows = (
        EmailLog.objects.filter(created_at__date__gte=since)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day")
        .annotate(
            sent=Count("id", filter=Q(status__in=SENT_STATUSES)),
            bounced=Count("id", filter=Q(bounced_at__isnull=False)),
            complained=Count("id", filter=Q(complained_at__isnull=False)),
        )
    )
    found = {row["day"]: row for row in rows}
    out = []
    for d in _days(since, today):
        row = found.get(d, {"sent": 0, "bounced": 0, "complained": 0})
        sent = row["sent"]
        out.append(
            {
                "day": d,
                "sent": sent,
                "bounce_rate": row["bounced"] / sent if sent else 0.0,
                "complaint_rate": row["complained"] / sent if sent else 0.0,
            }
        )
    return out


def journey_flow_per_day(
    *, days: int = 30, today: date | None = None, journey_id: str | None = None
) -> list[dict[str, Any]]:
    """Per day: runs that entered (one journey, or any), and runs that completed."""
    today = today or timezone.localdate()
    since = today - timedelta(days=days - 1)
    runs = JourneyRun.objects.filter(journey_id=journey_id) if journey_id else JourneyRun.objects.all()
    entered = (
        runs.filter(entered_at__date__gte=since)
        .annotate(day=TruncDate("entered_at"))
        .order_by()
        .values("day")
        .annotate(n=Count("id"))
    )
    completed = (
        runs.filter(status=JourneyRun.Status.COMPLETED, ended_at__date__gte=since)
        .annotate(day=TruncDate("ended_at"))
        .order_by()
        .values("day")
        .annotate(n=Count("id"))
    )
    e = {row["day"]: row["n"] for row in entered}
    c = {row["day"]: row["n"] for row in completed}
    return [{"day": d, "entered": e.get(d, 0), "completed": c.get(d, 0)} for d in _days(since, today)]
