"""Starting a broadcast: scheduled → running, its audience written as recipients in one statement."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from broadcasts.audience import recipients_materialise
from broadcasts.local_time import recipients_schedule
from broadcasts.models import Broadcast


def broadcast_begin(*, broadcast_id: UUID, now: datetime | None = None) -> tuple[Broadcast, bool]:
    """Scheduled → running under the broadcast's lock: write the recipients (INSERT … SELECT of
    the audience as it is now; for a local-time broadcast each with its own due moment), count
    them, open the pace. Returns (broadcast, whether it started now); one already past scheduled
    is returned as it is. The caller hands it to the workers."""
    now = now or timezone.now()
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
        if broadcast.status != Broadcast.Status.SCHEDULED:
            return broadcast, False
        total = recipients_materialise(
            broadcast_id=broadcast.pk, segment_id=broadcast.segment_id, conditions=broadcast.filter
        )
        if broadcast.local_time is not None and broadcast.local_date is not None:
            recipients_schedule(broadcast_id=broadcast.pk, day=broadcast.local_date, at=broadcast.local_time)
        Broadcast.objects.filter(pk=broadcast.pk).update(
            status=Broadcast.Status.RUNNING, recipients_total=total, started_at=now, next_slot_at=None
        )
    return Broadcast.objects.get(pk=broadcast_id), True
