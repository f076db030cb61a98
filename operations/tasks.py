"""Thin Celery tasks on the beat schedule (settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="operations.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    from operations.services import beat_heartbeat_record

    beat_heartbeat_record()


# Evaluations never overlap in practice (one beat); expire a queued one rather than run it late.
@shared_task(name="operations.alerts_evaluate", ignore_result=True, expires=120)
def alerts_evaluate() -> dict[str, int]:
    from operations.services import alerts_evaluate as evaluate

    return evaluate()


@shared_task(name="operations.retention_run", ignore_result=True)
def retention_run() -> dict[str, int]:
    from operations.retention import retention_run as run

    return {report.name: report.deleted for report in run()}


@shared_task(name="operations.outbox_reconcile", ignore_result=True, expires=120)
def outbox_reconcile() -> dict[str, int]:
    """Push again the events nothing decided (journeys/reconcile.py), and count what it did."""
    from journeys.reconcile import outbox_reconcile as reconcile
    from operations.metrics import reconcile_observe

    return reconcile_observe(reconcile())
