"""Thin Celery tasks: a broadcast's drains and the tick that starts, resumes and finishes them."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task
from django.conf import settings


@shared_task(name="broadcasts.drain", ignore_result=True, acks_late=True)
def broadcast_drain_task(broadcast_id: str) -> str:
    """Send a broadcast's batches for BROADCAST_DRAIN_SECONDS, then hand on to a fresh task while
    work is left (a long broadcast never holds one task for its whole length)."""
    from broadcasts.send import broadcast_drain

    result = broadcast_drain(broadcast_id=UUID(broadcast_id))
    if result.outcome == "more":
        broadcast_drain_task.apply_async(args=[broadcast_id])
    return result.outcome


def broadcast_drains_enqueue(*, broadcast_id: UUID | str, drains: int | None = None) -> None:
    """Start BROADCAST_DRAINS drains of a broadcast (they share its recipients and its pace)."""
    for _ in range(drains or settings.BROADCAST_DRAINS):
        broadcast_drain_task.apply_async(args=[str(broadcast_id)])


@shared_task(name="broadcasts.tick", ignore_result=True)
def broadcast_tick_task() -> dict[str, int]:
    """Start broadcasts whose moment came, hand back claims of dead workers, restart drains of
    running broadcasts no worker touched lately, and finish those with nothing left."""
    from broadcasts.ticks import broadcasts_tick

    tick = broadcasts_tick()
    for broadcast_id in tick.to_drain:
        broadcast_drains_enqueue(broadcast_id=broadcast_id)
    return {"started": tick.started, "released": tick.released, "drained": len(tick.to_drain)}
