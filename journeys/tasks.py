"""Thin Celery tasks around the journey runtime's maintenance."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="journeys.outbox_sweep", ignore_result=True)
def outbox_sweep() -> int:
    """The safety net behind the relays: settle whatever is pending, drop expired waits."""
    from contacts.outbox import awaited_events_expire
    from journeys.runtime.relay import OutboxRelay

    awaited_events_expire()
    return OutboxRelay().drain()


@shared_task(name="journeys.digests_sweep", ignore_result=True, expires=300)
def digests_sweep() -> dict[str, int]:
    """Digests whose opener never enrolled: handed on to their next event, or discarded."""
    from journeys.digests import digests_sweep as sweep

    result = sweep()
    return {"handed_on": len(result.handed_on), "discarded": len(result.discarded)}
