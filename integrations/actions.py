"""Operator actions on deliveries and destinations. The Studio and the admin API call these.

Each is audited; what they queue goes to Celery after commit, by id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid4

from django.db import transaction
from django.utils import timezone

from contacts.services import audit_record
from integrations.catalog import event_type_get
from integrations.destinations import SendOutcome
from integrations.models import Delivery, Destination
from integrations.outbound import destination_send
from integrations.tasks import deliveries_enqueue


def deliveries_replay(*, delivery_ids: Iterable[UUID | str], actor: Any = None) -> int:
    """Send dead letters again from a fresh attempt count (an operator action, audited)."""
    ids = [str(i) for i in delivery_ids]
    with transaction.atomic():
        replayed = list(
            Delivery.objects.select_for_update()
            .filter(pk__in=ids, status=Delivery.Status.DEAD)
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=replayed).update(
            status=Delivery.Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            dead_at=None,
            lease_until=None,
            updated_at=timezone.now(),
        )
        if replayed:
            audit_record(
                actor=actor,
                action="delivery.replay",
                target_type="delivery",
                target_id=str(replayed[0]) if len(replayed) == 1 else f"{len(replayed)} deliveries",
                detail={"delivery_ids": [str(i) for i in replayed]},
            )
            transaction.on_commit(lambda: deliveries_enqueue(delivery_ids=replayed))
    return len(replayed)


def destination_test_send(*, destination: Destination, actor: Any = None) -> SendOutcome:
    """Send one `destination.test` event now, whatever the filter or pause; nothing is queued or
    retried, so a failing test never becomes a dead letter. Audited."""
    spec = event_type_get("destination.test")
    event_id = uuid4()
    envelope = {
        "id": str(event_id),
        "type": spec.type,
        "version": spec.version,
        "occurredAt": timezone.now().isoformat(),
        "data": {"destination": destination.name, "message": "If you can read this, it works."},
    }
    outcome = destination_send(destination=destination, delivery_id=str(event_id), envelope=envelope)
    audit_record(
        actor=actor,
        action="destination.test_send",
        target_type="destination",
        target_id=str(destination.pk),
        detail={"ok": outcome.ok, "status_code": outcome.status_code, "error": outcome.error[:500]},
    )
    return outcome
