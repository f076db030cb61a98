"""Thin Celery tasks for outbound deliveries."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from celery import shared_task
from django.utils import timezone

from integrations.models import Delivery
from integrations.outbound import deliveries_due, delivery_attempt, integrations_prune

logger = logging.getLogger(__name__)

# Retries sooner than this are re-enqueued with a countdown; later ones are left to the sweep
# (a long countdown on a Redis broker outlives its visibility timeout and runs twice).
COUNTDOWN_MAX_SECONDS = 300


@shared_task(name="integrations.delivery_attempt", acks_late=True, ignore_result=True)
def delivery_attempt_task(delivery_id: str) -> str:
    delivery = delivery_attempt(delivery_id=delivery_id)
    if delivery is None:
        return "gone"
    if delivery.status == Delivery.Status.PENDING and delivery.lease_until is None:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        # > 0: a retry this attempt just scheduled (a paused destination's delivery is due, not later).
        if 0 < wait <= COUNTDOWN_MAX_SECONDS:
            delivery_attempt_task.apply_async(args=[delivery_id], countdown=wait)
    return delivery.status


@shared_task(name="integrations.deliveries_sweep", ignore_result=True)
def deliveries_sweep_task() -> int:
    """Enqueue due deliveries that no job holds: long backoffs, a lost enqueue, a resumed destination."""
    due = deliveries_due()
    deliveries_enqueue(delivery_ids=due)
    return len(due)


@shared_task(name="integrations.prune", ignore_result=True)
def integrations_prune_task() -> list[int]:
    """Keep the delivery tables bounded (INTEGRATIONS_DELIVERED_KEEP_DAYS, WEBHOOK_DELIVERIES_KEEP_DAYS)."""
    return list(integrations_prune())


def deliveries_enqueue(*, delivery_ids: Sequence[UUID | str]) -> None:
    """Hand deliveries to Celery. A broker that is down loses nothing: the sweep finds them."""
    for delivery_id in delivery_ids:
        try:
            # No publish retries: a broker that is down must not hold up the caller's request.
            delivery_attempt_task.apply_async(args=[str(delivery_id)], retry=False)
        except Exception as error:
            logger.warning("could not enqueue delivery %s (the sweep will): %s", delivery_id, error)
            return
