"""The broadcasts' tick (Celery beat, `broadcasts.tick`): what keeps broadcasts moving by themselves.

1. Scheduled broadcasts whose moment came start (their recipients written).
2. Claims older than BROADCAST_CLAIM_TIMEOUT_SECONDS go back to pending (their worker died).
3. Running broadcasts with due recipients left that no worker drained for BROADCAST_STALL_SECONDS
   (every drain died with its worker), or that came due after the last drain (a local-time
   broadcast's next zone), are handed to new drains; the caller enqueues them. One whose
   recipients are all due later stays running untouched.
4. Running broadcasts with nothing left are completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import Max, Q
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
        todo = _todo(broadcast_id=broadcast_id, now=now)
        if not todo["left"]:
            tick.completed += broadcast_complete(broadcast_id=broadcast_id)
        elif not todo["due"]:
            continue  # its recipients come due later (local time): it stays running, nobody drains yet
        elif (
            drained_at is None
            or drained_at < stalled_before
            or (todo["came_due"] is not None and drained_at < todo["came_due"])
        ):
            tick.to_drain.append(broadcast_id)
    return tick


def _todo(*, broadcast_id: UUID, now: datetime) -> dict:
    """Whether any recipient is left, whether any is due now, and the last due moment among the
    pending that came due (a drain that stopped before it left them for the tick)."""
    todo = BroadcastRecipient.objects.filter(
        broadcast_id=broadcast_id, state__in=[State.PENDING, State.CLAIMED]
    )
    due = todo.filter(state=State.PENDING).filter(Q(due_at__isnull=True) | Q(due_at__lte=now))
    found = {"left": todo.exists(), "due": False, "came_due": None}
    if found["left"]:
        found["due"] = due.exists()
    if found["due"]:
        found["came_due"] = due.aggregate(last=Max("due_at"))["last"]
    return found
