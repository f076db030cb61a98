"""The broadcast worker: claim recipients in batches, pace them, send each through the pipeline.

A batch's emails are written by `emails.services.email_send_batch` with the idempotency key
`broadcast:<broadcast id>:<contact id>`, each decided by the rules of a single send, so consent,
categories, suppression, the send-time policy and idempotency are those of every other send, and
a recipient gets at most one email however often its batch is retried. A batch:

1. Claim up to `size` pending recipients of a running broadcast that are due (`FOR UPDATE SKIP LOCKED`, so
   workers never share one), marking them claimed; commit.
2. Reserve the batch's slot in the broadcast's pace (one conditional UPDATE every worker shares)
   and sleep until it starts.
3. In one transaction holding the broadcast's row `FOR SHARE` (a cancel takes it `FOR UPDATE`),
   check it is still running and write the batch's email rows (set-based, nothing delivered);
   commit. The recipients learn their email ids with their outcomes (step 5): until then the key
   finds the row (a retried batch, a cancel).
4. Hand the queued rows to the provider, outside any transaction, over one SMTP connection, the
   template rendered once (`emails.batch.emails_deliver_batch`); a cancel that committed meanwhile
   has suppressed the rows not yet claimed.
5. Record each recipient's outcome and email id (one UPDATE).

A worker killed anywhere leaves recipients claimed; after BROADCAST_CLAIM_TIMEOUT_SECONDS the tick
returns them to pending and another batch takes them: an email row already written for one is
found by its key and only delivered if it is still queued (a claim decides who delivers it); one
a crash left `sending` is settled by the email sweep and never sent twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from broadcasts.models import Broadcast, BroadcastRecipient
from contacts.addresses import EmailError
from emails.batch import emails_deliver_batch
from emails.delivery import EmailDeliveryDeferred, email_deliver
from emails.models import EmailLog
from emails.services import BatchRecipient, email_send_batch

logger = logging.getLogger(__name__)
Status = Broadcast.Status
State = BroadcastRecipient.State


def idempotency_key(broadcast_id: UUID | str, contact_id: UUID | str) -> str:
    return f"broadcast:{broadcast_id}:{contact_id}"


@dataclass
class Claimed:
    recipient_id: int
    contact_id: UUID
    user_id: str
    email: str


@dataclass
class DrainResult:
    sent: int = 0
    batches: int = 0
    outcome: str = "more"  # more | done | stopped (not running) | idle (others hold the rest)
    outcomes: dict[str, int] = field(default_factory=dict)


_CLAIM_SQL = """
WITH claimed AS (
    SELECT r.id FROM broadcasts_broadcastrecipient r
    WHERE r.broadcast_id = %(broadcast)s AND r.state = 'pending'
      AND (r.due_at IS NULL OR r.due_at <= %(now)s)
      AND EXISTS (SELECT 1 FROM broadcasts_broadcast b WHERE b.id = %(broadcast)s AND b.status = 'running')
    ORDER BY r.due_at, r.id
    LIMIT %(size)s
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE broadcasts_broadcastrecipient r SET state = 'claimed', claimed_at = now()
FROM claimed, contacts_contact c
WHERE r.id = claimed.id AND c.id = r.contact_id
RETURNING r.id, r.contact_id, c.user_id, c.email
"""


def recipients_claim(*, broadcast_id: UUID, size: int, now: Any = None) -> list[Claimed]:
    """Step 1: a batch of this broadcast's pending recipients that are due (a local-time
    broadcast's recipients come due at their own moments), claimed (committed by itself)."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"broadcast": broadcast_id, "size": size, "now": now})
        rows = cursor.fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.recipient_id)


# The pace is kept on the database's clock, the one every worker shares; a caller that keeps its
# own (the virtual-time harness) passes its moment instead.
_SLOT_SQL = """
WITH clock AS (SELECT coalesce(%(now)s::timestamptz, now()) AS now)
UPDATE broadcasts_broadcast
SET next_slot_at = greatest(coalesce(next_slot_at, clock.now), clock.now) + %(length)s * interval '1 second',
    drained_at = clock.now
FROM clock
WHERE id = %(broadcast)s
RETURNING next_slot_at - %(length)s * interval '1 second', clock.now
"""


def slot_reserve(*, broadcast_id: UUID, sends: int, rate: float, now: datetime | None = None) -> float:
    """Step 2: reserve `sends` sends in the broadcast's shared pace; seconds to wait before them.
    `now`: the moment to pace from, the database's clock unless given."""
    if rate <= 0:
        Broadcast.objects.filter(pk=broadcast_id).update(drained_at=now or timezone.now())
        return 0.0
    length = sends / rate
    with connection.cursor() as cursor:
        cursor.execute(_SLOT_SQL, {"broadcast": broadcast_id, "length": length, "now": now})
        row = cursor.fetchone()
    if row is None:
        return 0.0
    starts, now = row
    return max((starts - now).total_seconds(), 0.0)


def _still_running(broadcast_id: UUID) -> bool:
    """Inside the batch's transaction: share-lock the broadcast so a cancel waits for this batch's
    rows to commit (and then suppresses those still queued), and read whether it may still send."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM broadcasts_broadcast WHERE id = %s FOR SHARE", [broadcast_id])
        row = cursor.fetchone()
    return row is not None and row[0] == Status.RUNNING


def _release(claimed: list[Claimed]) -> None:
    """A batch the broadcast stopped under (paused): its recipients go back to pending."""
    BroadcastRecipient.objects.filter(pk__in=[c.recipient_id for c in claimed], state=State.CLAIMED).update(
        state=State.PENDING, claimed_at=None
    )


def _outcomes_record(outcomes: list[tuple[int, str, str, UUID | None]]) -> None:
    """Step 5: every recipient of the batch done with its outcome, in one UPDATE."""
    if not outcomes:
        return
    ids, results, reasons, emails = zip(*outcomes, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE broadcasts_broadcastrecipient r
            SET state = 'done', outcome = o.outcome, reason = o.reason, email_id = o.email_id, done_at = now()
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::uuid[]) AS o(id, outcome, reason, email_id)
            WHERE r.id = o.id AND r.state = 'claimed'
            """,
            [list(ids), list(results), list(reasons), list(emails)],
        )


def batch_send(*, broadcast: Broadcast, claimed: list[Claimed]) -> dict[str, int] | None:
    """Steps 3 to 5 for one claimed batch; None if the broadcast stopped before its emails were written."""
    if broadcast.journey_id:
        return _batch_enroll(broadcast=broadcast, claimed=claimed)
    started = timezone.now()
    error = ""
    with transaction.atomic():
        if not _still_running(broadcast.pk):
            _release(claimed)
            return None
        try:
            logs: list[EmailLog | None] = list(
                email_send_batch(
                    recipients=[
                        BatchRecipient(
                            user_id=person.user_id,
                            to=person.email,
                            idempotency_key=idempotency_key(broadcast.pk, person.contact_id),
                        )
                        for person in claimed
                    ],
                    template=broadcast.template,
                    props=broadcast.props,
                    category=broadcast.category or None,
                    priority=broadcast.priority,
                    on_cap=broadcast.on_cap,
                )
            )
        except EmailError as refused:  # the template or category refused: the whole batch's
            logs, error = [None] * len(claimed), str(refused)
    logs = _batch_deliver(logs, started=started)
    outcomes: list[tuple[int, str, str, UUID | None]] = []
    counts: dict[str, int] = {}
    for person, log in zip(claimed, logs, strict=True):
        if log is None:
            outcomes.append((person.recipient_id, "failed", error[:2000], None))
            counts["failed"] = counts.get("failed", 0) + 1
            continue
        outcomes.append((person.recipient_id, log.status, log.status_reason, log.pk))
        counts[log.status] = counts.get(log.status, 0) + 1
    _outcomes_record(outcomes)
    return counts


def _batch_deliver(logs: list[EmailLog | None], *, started: Any) -> list[EmailLog | None]:
    """Step 4: the rows this batch wrote, over one provider connection (emails.batch); a queued row
    an earlier, dead worker wrote is delivered as any row that waited (consent checked again)."""
    fresh = [i for i, log in enumerate(logs) if log is not None and log.status == EmailLog.Status.QUEUED
             and log.created_at >= started]  # fmt: skip
    for i, log in zip(fresh, emails_deliver_batch(logs=[logs[i] for i in fresh]), strict=True):
        logs[i] = log
    for i, log in enumerate(logs):
        if log is not None and log.status == EmailLog.Status.QUEUED and log.created_at < started:
            logs[i] = _deliver_waited(log)
    return logs


def _deliver_waited(log: EmailLog) -> EmailLog:
    """A row that waited: claim, provider call, record. A transient failure leaves the row queued
    for the email task's retries (the recipient's outcome says `queued`)."""
    from emails.tasks import email_deliver_task

    try:
        return email_deliver(email_id=log.pk)
    except EmailDeliveryDeferred:
        email_deliver_task.apply_async(args=[str(log.pk)], countdown=settings.EMAIL_RETRY_FIRST_DELAY_SECONDS)
        return EmailLog.objects.get(pk=log.pk)


def _batch_enroll(*, broadcast: Broadcast, claimed: list[Claimed]) -> dict[str, int] | None:
    """A broadcast into a journey: each recipient gets the journey's trigger event (keyed like a
    send, so at most one), through ingest, and the enrollment guards decide as for any event."""
    from contacts.ingest import EventDraft, IngestError, events_ingest
    from contacts.models import Event
    from journeys.registry import registry

    journey = registry.get(broadcast.journey_id)
    outcomes: list[tuple[int, str, str, UUID | None]] = []
    with transaction.atomic():
        if not _still_running(broadcast.pk):
            _release(claimed)
            return None
        if journey is None:
            outcomes = [(c.recipient_id, "failed", f"journey {broadcast.journey_id!r} is gone", None)
                        for c in claimed]  # fmt: skip
        else:
            drafts = [
                EventDraft(
                    name=journey.trigger.event,
                    user_id=c.user_id,
                    properties={**broadcast.props, "broadcast_id": str(broadcast.pk)},
                    idempotency_key=idempotency_key(broadcast.pk, c.contact_id),
                )
                for c in claimed
            ]
            results = events_ingest(drafts=drafts, source=Event.Source.SYSTEM)
            for person, result in zip(claimed, results, strict=True):
                if isinstance(result, IngestError):
                    outcomes.append((person.recipient_id, "failed", str(result)[:2000], None))
                else:
                    outcomes.append((person.recipient_id, "enrolled", "", None))
        _outcomes_record(outcomes)
    counts: dict[str, int] = {}
    for _, outcome, _, _ in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def broadcast_drain(
    *, broadcast_id: UUID, seconds: float | None = None, batch_size: int | None = None
) -> DrainResult:
    """Send batches of one broadcast for up to `seconds`; how it stopped is in `outcome`."""
    seconds = settings.BROADCAST_DRAIN_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    result = DrainResult()
    while time.monotonic() < deadline:
        if not batch_drain(broadcast_id=broadcast_id, result=result, batch_size=batch_size):
            return result
    result.outcome = "more"
    return result


def batch_drain(
    *,
    broadcast_id: UUID,
    result: DrainResult,
    batch_size: int | None = None,
    now: Callable[[], datetime] | None = None,
    wait: Callable[[float], None] = time.sleep,
) -> bool:
    """One batch of a drain (steps 1 to 5), counted into `result`; False once the drain is over
    (`result.outcome` says why). `now` and `wait` are the clock and the sleep of the pace: the
    database's and a real one, unless a caller that keeps time itself gives its own."""
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None or broadcast.status != Status.RUNNING:
        result.outcome = "stopped"
        return False
    size = batch_size or _batch_size(broadcast.rate)
    claimed = recipients_claim(broadcast_id=broadcast_id, size=size, now=now() if now else None)
    if not claimed:
        if broadcast_complete(broadcast_id=broadcast_id):
            result.outcome = "done"
        else:
            # Others hold the rest, or the rest is not due yet: the tick hands it to a drain
            # when it comes due, and a dead worker's claims come back through the tick too.
            result.outcome = "idle"
        return False
    pause = slot_reserve(
        broadcast_id=broadcast_id, sends=len(claimed), rate=broadcast.rate, now=now() if now else None
    )
    if pause > 0:
        wait(pause)
    counts = batch_send(broadcast=broadcast, claimed=claimed)
    if counts is None:
        result.outcome = "stopped"
        return False
    result.batches += 1
    for name, n in counts.items():
        result.outcomes[name] = result.outcomes.get(name, 0) + n
    result.sent += counts.get(EmailLog.Status.SENT, 0)
    return True


def _batch_size(rate: float) -> int:
    """About a second of sends per batch (at least one, at most BROADCAST_BATCH_SIZE)."""
    limit = settings.BROADCAST_BATCH_SIZE
    if rate <= 0:
        return limit
    return max(1, min(limit, int(rate)))


def stale_claims_release(*, broadcast_id: UUID | None = None, now: Any = None) -> int:
    """Recipients claimed longer ago than BROADCAST_CLAIM_TIMEOUT_SECONDS belonged to a worker that
    died: back to pending (their email rows, if any were written, are found again by key)."""
    now = now or timezone.now()
    stale = BroadcastRecipient.objects.filter(
        state=State.CLAIMED,
        claimed_at__lt=now - timedelta(seconds=settings.BROADCAST_CLAIM_TIMEOUT_SECONDS),
        broadcast__status=Status.RUNNING,
    )
    if broadcast_id is not None:
        stale = stale.filter(broadcast_id=broadcast_id)
    return stale.update(state=State.PENDING, claimed_at=None)


def broadcast_complete(*, broadcast_id: UUID) -> bool:
    """Running → completed once no recipient is left to send (one conditional UPDATE)."""
    return bool(
        Broadcast.objects.filter(pk=broadcast_id, status=Status.RUNNING)
        .exclude(recipients__state__in=[State.PENDING, State.CLAIMED])
        .update(status=Status.COMPLETED, finished_at=timezone.now())
    )
