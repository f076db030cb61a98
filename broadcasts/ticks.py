"""The broadcasts' tick (Celery beat, `broadcasts.tick`): what keeps broadcasts moving by themselves.

1. Scheduled broadcasts whose moment came start (their recipients written).
2. Claims older than BROADCAST_CLAIM_TIMEOUT_SECONDS go back to pending (their worker died).
3. Running broadcasts with recipients left that no worker drained for BROADCAST_STALL_SECONDS
   (every drain died with its worker) are handed to new drains; the caller enqueues them.
4. Running broadcasts with nothing left are completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.send import broadcast_complete, stale_claims_release
from broadcasts.starting import broadcast_begin

Status = Broadcast.Status
State = BroadcastRecipient.State


@dataclass
class Tick:
    started: int = 0
    released: int = 0
    completed: int = 0
    to_drain: list[UUID] = field(default_factory=list)


def broadcasts_tick(*, now: datetime | None = None) -> Tick:
    now = now or timezone.now()
    tick = Tick()
    due = Broadcast.objects.filter(status=Status.SCHEDULED).filter(
        Q(send_at__isnull=True) | Q(send_at__lte=now)
    )
    for broadcast_id in due.values_list("pk", flat=True):
        _, started = broadcast_begin(broadcast_id=broadcast_id, now=now)
        if started:
            tick.started += 1
            tick.to_drain.append(broadcast_id)
    tick.released = stale_claims_release(now=now)
    stalled_before = now - timedelta(seconds=settings.BROADCAST_STALL_SECONDS)
    for broadcast_id, drained_at in Broadcast.objects.filter(status=Status.RUNNING).values_list(
        "pk", "drained_at"
    ):
        if broadcast_id in tick.to_drain:
            continue
        left = BroadcastRecipient.objects.filter(
            broadcast_id=broadcast_id, state__in=[State.PENDING, State.CLAIMED]
        ).exists()
        if not left:
            tick.completed += broadcast_complete(broadcast_id=broadcast_id)
        elif drained_at is None or drained_at < stalled_before:
            tick.to_drain.append(broadcast_id)
    return tick
