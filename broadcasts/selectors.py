"""Broadcast reads: progress while it sends, the report afterwards (one grouped query each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import connection
from django.utils import timezone

from broadcasts.models import Broadcast

SKIPPED = ("suppressed", "skipped", "failed", "cancelled", "unknown")


@dataclass
class Progress:
    total: int
    sent: int = 0
    enrolled: int = 0
    held: int = 0  # written but waiting: a retry's backoff, a held send
    skipped: dict[str, int] = field(default_factory=dict)  # by reason
    remaining: int = 0
    scheduled: int = 0  # of the remaining: not due yet (a local-time broadcast's later zones)
    rate: float = 0.0  # sends per second since the broadcast started
    seconds_left: float | None = None

    @property
    def done(self) -> int:
        return self.total - self.remaining

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def as_data(self) -> dict:
        return {
            "total": self.total,
            "sent": self.sent,
            "enrolled": self.enrolled,
            "held": self.held,
            "skipped": self.skipped,
            "remaining": self.remaining,
            "scheduled": self.scheduled,
            "rate": round(self.rate, 2),
            "secondsLeft": None if self.seconds_left is None else round(self.seconds_left, 1),
        }


def broadcast_progress(*, broadcast: Broadcast, now: datetime | None = None) -> Progress:
    """Sent / held / skipped by reason / remaining (and of those, scheduled: not due yet), the rate
    so far and the time left at it (for the due ones: the scheduled wait for their moment)."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT state, outcome,
                   CASE WHEN NOT (outcome = ANY(%s)) THEN ''
                        WHEN outcome = 'failed' THEN 'failed'
                        WHEN outcome = 'unknown' THEN 'outcome_unknown'
                        ELSE coalesce(nullif(reason, ''), outcome) END,
                   count(*), max(done_at), coalesce(state = 'pending' AND due_at > %s, false)
            FROM broadcasts_broadcastrecipient WHERE broadcast_id = %s
            GROUP BY 1, 2, 3, 6
            """,
            [list(SKIPPED), now, broadcast.pk],
        )
        rows = cursor.fetchall()
    progress = Progress(total=sum(r[3] for r in rows) or broadcast.recipients_total)
    last_done = None
    for state, outcome, reason, n, done_at, not_due in rows:
        if state != "done":
            progress.remaining += n
            progress.scheduled += n if not_due else 0
            continue
        if done_at and (last_done is None or done_at > last_done):
            last_done = done_at
        if outcome == "sent":
            progress.sent += n
        elif outcome == "enrolled":
            progress.enrolled += n
        elif outcome in SKIPPED:
            progress.skipped[reason] = progress.skipped.get(reason, 0) + n
        else:
            progress.held += n
    if broadcast.started_at:
        until = now if progress.remaining else (last_done or now)
        elapsed = max((until - broadcast.started_at).total_seconds(), 1e-6)
        progress.rate = progress.done / elapsed
        due = progress.remaining - progress.scheduled
        if due and progress.rate > 0 and broadcast.status == Broadcast.Status.RUNNING:
            progress.seconds_left = due / progress.rate
    return progress


@dataclass
class Report:
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0

    def as_data(self) -> dict:
        return dict(self.__dict__)


def broadcast_report(*, broadcast_id: UUID) -> Report:
    """What became of the broadcast's emails (through the recipients' email ids), and who
    unsubscribed or opted out of its category after getting one."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(l.delivered_at), count(l.bounced_at), count(l.complained_at),
                   count(coalesce(l.opened_at, l.clicked_at)), count(l.clicked_at),
                   count(*) FILTER (WHERE EXISTS (
                       SELECT 1 FROM contacts_consentchange cc
                       WHERE cc.contact_id = r.contact_id AND cc.occurred_at >= l.sent_at
                         AND (cc.kind = 'unsubscribed'
                              OR (cc.kind = 'category_opted_out' AND cc.category = l.category))))
            FROM broadcasts_broadcastrecipient r JOIN emails_emaillog l ON l.id = r.email_id
            WHERE r.broadcast_id = %s
            """,
            [broadcast_id],
        )
        row = cursor.fetchone()
    return Report(*row)


def broadcasts_done_counts(broadcast_ids: list[UUID]) -> dict[UUID, tuple[int, int]]:
    """(total, done) recipients per broadcast, for a list's progress bars: one grouped query."""
    if not broadcast_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT broadcast_id, count(*), count(*) FILTER (WHERE state = 'done')
            FROM broadcasts_broadcastrecipient WHERE broadcast_id = ANY(%s::uuid[])
            GROUP BY broadcast_id
            """,
            [[str(i) for i in broadcast_ids]],
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
