"""Thin Celery tasks on the beat schedule (settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="audiences.segments_refresh", ignore_result=True, expires=600)
def segments_refresh() -> dict[str, int]:
    """Time-based segments (and any never populated): "more than 14 days ago" moves without events."""
    from audiences.services import segments_refresh_due

    return {r.segment_id: r.entered + r.exited for r in segments_refresh_due()}


@shared_task(name="audiences.segments_reconcile", ignore_result=True, expires=3600)
def segments_reconcile() -> dict[str, int]:
    """Every segment, fully: repairs what no hook reported (an import, a lost after-commit check)."""
    from audiences.services import segment_sizes_snapshot, segments_refresh_due

    changed = {r.segment_id: r.entered + r.exited for r in segments_refresh_due(full=True)}
    segment_sizes_snapshot()
    return changed
