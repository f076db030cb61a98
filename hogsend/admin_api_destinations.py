"""Admin API for outbound destinations and their dead letters (`/v1/admin/destinations`, admin scope).

Reads of the integrations app's rows, and its operator services for replay and test sends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, Q
from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from contacts.actions import api_key_actor
from contacts.auth import admin_auth
from contacts.pagination import CURSOR_DESCRIPTION, BadCursor, Cursor, cursor_decode, cursor_encode
from integrations.actions import deliveries_replay, destination_test_send
from integrations.models import Delivery, Destination

router = Router(auth=admin_auth, tags=["admin: destinations"])
REPLAY_BATCH = 10_000


class DestinationOut(Schema):
    id: int
    name: str
    kind: str
    eventTypes: list[str]
    paused: bool
    pending: int
    deadLetters: int


class DeadLetterOut(Schema):
    id: UUID
    eventId: UUID
    eventType: str
    attempts: int
    lastError: str
    lastStatusCode: int | None
    createdAt: datetime
    deadAt: datetime | None
    payload: dict[str, Any]


class DeadLetterPageOut(Schema):
    items: list[DeadLetterOut]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class ReplayOut(Schema):
    replayed: int = Field(description="Dead letters sent back to the queue with a fresh attempt count")


class TestSendOut(Schema):
    ok: bool
    statusCode: int | None
    error: str


def _destination_or_404(destination_id: int) -> Destination:
    destination = Destination.objects.filter(pk=destination_id).first()
    if destination is None:
        raise HttpError(404, f"no destination {destination_id}")
    return destination


@router.get("/destinations", response=list[DestinationOut])
def destinations_list(request: HttpRequest):
    """Every destination with its filter, whether it is paused, and what waits or died on the way.
    URLs and secrets are not shown (a Slack URL is itself the secret)."""
    rows = Destination.objects.annotate(
        pending=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
        dead=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DEAD)),
    ).order_by("name")
    return [
        {
            "id": d.pk,
            "name": d.name,
            "kind": d.kind,
            "eventTypes": d.event_types,
            "paused": d.paused,
            "pending": d.pending,
            "deadLetters": d.dead,
        }
        for d in rows
    ]


@router.get("/destinations/{destination_id}/dead-letters", response=DeadLetterPageOut)
def dead_letters_list(
    request: HttpRequest,
    destination_id: int,
    cursor: Cursor | None = Query(None, description=CURSOR_DESCRIPTION),
    limit: int = Query(100, ge=1, le=1000),
):
    """Deliveries that used every attempt, newest death first, with the last error; pass the
    previous page's `nextCursor` as `cursor` for the next."""
    destination = _destination_or_404(destination_id)
    dead = Delivery.objects.filter(destination=destination, status=Delivery.Status.DEAD)
    if cursor:
        try:
            after, pk = cursor_decode(cursor)
        except BadCursor as error:
            raise HttpError(422, str(error)) from None
        dead = dead.filter(Q(dead_at__lt=after) | Q(dead_at=after, pk__lt=pk))
    found = list(dead.order_by("-dead_at", "-pk")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return {
        "items": [
            {
                "id": d.pk,
                "eventId": d.event_id,
                "eventType": d.event_type,
                "attempts": d.attempts,
                "lastError": d.last_error,
                "lastStatusCode": d.last_status_code,
                "createdAt": d.created_at,
                "deadAt": d.dead_at,
                "payload": d.payload,
            }
            for d in found
        ],
        "nextCursor": cursor_encode(at=found[-1].dead_at, pk=found[-1].pk) if more and found else None,
    }


@router.post("/deliveries/{delivery_id}/replay", response={202: ReplayOut})
def delivery_replay(request: HttpRequest, delivery_id: UUID):
    """Send one dead letter again (same delivery id, so the receiver can deduplicate). 409 if it is
    not a dead letter."""
    status = Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
    if status is None:
        raise HttpError(404, f"no delivery {delivery_id}")
    if status != Delivery.Status.DEAD:
        raise HttpError(409, f"this delivery is {status}; only a dead letter can be replayed")
    return 202, {"replayed": deliveries_replay(delivery_ids=[delivery_id], actor=api_key_actor(request.auth))}


@router.post("/destinations/{destination_id}/dead-letters/replay", response={202: ReplayOut})
def dead_letters_replay(request: HttpRequest, destination_id: int):
    """Send every dead letter of a destination again (up to 10,000 per call; call again for more)."""
    destination = _destination_or_404(destination_id)
    ids = list(
        Delivery.objects.filter(destination=destination, status=Delivery.Status.DEAD)
        .order_by("dead_at")
        .values_list("pk", flat=True)[:REPLAY_BATCH]
    )
    replayed = deliveries_replay(delivery_ids=ids, actor=api_key_actor(request.auth)) if ids else 0
    return 202, {"replayed": replayed}


@router.post("/destinations/{destination_id}/test", response=TestSendOut)
def destination_test(request: HttpRequest, destination_id: int):
    """Send one `destination.test` event now and say what the destination answered."""
    outcome = destination_test_send(
        destination=_destination_or_404(destination_id), actor=api_key_actor(request.auth)
    )
    return {"ok": outcome.ok, "statusCode": outcome.status_code, "error": outcome.error}
