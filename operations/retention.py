"""Retention: deleting what is old enough, in small batches that never hold up ingest.

Each kind of row is deleted by primary key, `RETENTION_BATCH_SIZE` at a time, each batch in its own
short transaction: a batch locks only the rows it deletes (and ended runs it unlinks), which no
request writes: pending events, live runs' trigger events, steps and mail are never selected, so
ingest never waits on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from contacts.models import Event
from emails.models import EmailLog
from journeys.models import JourneyRun, RunStep

# A failed run can still be retried (replayed from its step log), so only these are final.
FINAL_RUN_STATUSES = (JourneyRun.Status.COMPLETED, JourneyRun.Status.EXITED)


@dataclass(frozen=True)
class RetentionKind:
    name: str
    days_setting: str
    candidates: Callable[[datetime], models.QuerySet]


def _events(cutoff: datetime) -> models.QuerySet:
    # Never a pending event: it is the outbox, and has not reached the engine yet. Never the trigger
    # of a live run either: deleting it would update (so lock) that run, which ingest may be exiting.
    live_triggers = JourneyRun.objects.filter(
        status__in=JourneyRun.LIVE_STATUSES, trigger_event__isnull=False
    ).values("trigger_event_id")
    return (
        Event.objects.filter(occurred_at__lt=cutoff)
        .exclude(dispatch_state=Event.DispatchState.PENDING)
        .exclude(pk__in=live_triggers)
    )


def _steps(cutoff: datetime) -> models.QuerySet:
    return RunStep.objects.filter(run__status__in=FINAL_RUN_STATUSES, run__ended_at__lt=cutoff)


def _emails(cutoff: datetime) -> models.QuerySet:
    # Mail of an ended run, or transactional mail (no run); never the mail of a run still going.
    return EmailLog.objects.filter(created_at__lt=cutoff).filter(
        Q(run__isnull=True) | Q(run__status__in=FINAL_RUN_STATUSES, run__ended_at__lt=cutoff)
    )


KINDS = [
    RetentionKind("events", "RETENTION_EVENTS_DAYS", _events),
    RetentionKind("step logs", "RETENTION_STEPS_DAYS", _steps),
    RetentionKind("email logs", "RETENTION_EMAILS_DAYS", _emails),
]


@dataclass
class RetentionReport:
    name: str
    days: int
    cutoff: datetime | None
    matched: int = 0
    deleted: int = 0


def retention_plan(*, now: datetime | None = None) -> list[tuple[RetentionKind, RetentionReport]]:
    """What each kind keeps (0 days keeps forever) and how many rows are past it."""
    now = now or timezone.now()
    plan = []
    for kind in KINDS:
        days = int(getattr(settings, kind.days_setting))
        cutoff = now - timedelta(days=days) if days > 0 else None
        report = RetentionReport(kind.name, days, cutoff)
        if cutoff is not None:
            report.matched = kind.candidates(cutoff).count()
        plan.append((kind, report))
    return plan


def retention_run(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[RetentionReport]:
    """Delete everything past its retention; with `dry_run`, only count it.

    1. Count each kind's candidates once (the dry run's answer and the progress bar's total).
    2. Repeatedly select up to `batch_size` primary keys of candidates and delete exactly those rows
       in a transaction of their own; rows deleted vanish from the next selection.
    3. Stop a kind when a selection comes back empty. `progress(kind, done, total)` after each batch.
    """
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    reports = []
    for kind, report in retention_plan(now=now):
        reports.append(report)
        if dry_run or report.cutoff is None or report.matched == 0:
            continue
        model = kind.candidates(report.cutoff).model
        while True:
            with transaction.atomic():
                ids = list(
                    kind.candidates(report.cutoff).order_by().values_list("pk", flat=True)[:batch_size]
                )
                if not ids:
                    break
                # Django's delete: referencing rows (a run's trigger event, a webhook's email) are set
                # to NULL in the same short transaction, as the models declare.
                deleted = model.objects.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)
            report.deleted += deleted
            if progress:
                progress(kind.name, report.deleted, report.matched)
    return reports
