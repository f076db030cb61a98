"""The email sweep (Celery beat, `emails.sweep`): no email row stays queued or sending after a crash.

1. A row `sending` longer than EMAIL_SENDING_TIMEOUT_SECONDS outlived the process that claimed it:
   it died during the provider call, so whether the mail went out is unknown. Its category decides
   (README, "When a worker dies mid-send"): one that resends if uncertain (transactional: operator
   pages, receipts) is queued again — at least once; any other is marked `unknown` and never sent
   twice.
2. A row `queued` and untouched for EMAIL_QUEUED_TIMEOUT_SECONDS lost its delivery (its process
   died before the provider call and no retry came). Those and step 1's re-queued rows are handed
   back to be delivered; every delivery claims its row, so two of them never both send.
3. A row `held` EMAIL_HELD_GRACE_SECONDS past its `held_until` missed its release task (a lost
   Celery message, a broker restart): it is queued and handed back too. A held send is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from contacts.categories import category_resends_if_uncertain
from emails.models import EmailLog
from emails.status import Status, email_status_advance

RESENT_REASON = "retrying: the process stopped during the provider call; sent again (at least once)"
UNKNOWN_REASON = (
    "outcome_unknown: the process stopped during the provider call; not sent again, so never twice"
)


@dataclass
class EmailSweep:
    deliver: list[UUID] = field(default_factory=list)  # queued rows to hand to a delivery
    resent: int = 0
    unknown: int = 0
    released: int = 0


def email_sweep(*, now: datetime | None = None) -> EmailSweep:
    """Settle stale `sending` rows and collect stale `queued` ones; the caller delivers `deliver`."""
    now = now or timezone.now()
    batch = settings.EMAIL_SWEEP_BATCH
    result = EmailSweep()
    claimed_before = now - timedelta(seconds=settings.EMAIL_SENDING_TIMEOUT_SECONDS)
    stale = (
        EmailLog.objects.filter(status=Status.SENDING, updated_at__lt=claimed_before)
        .order_by("updated_at")
        .values_list("pk", "category")[:batch]
    )
    for pk, category in stale:
        resend = category_resends_if_uncertain(category)
        if email_status_advance(
            email_id=pk,
            to=Status.QUEUED if resend else Status.UNKNOWN,
            reason=RESENT_REASON if resend else UNKNOWN_REASON,
            only_from=Status.SENDING,
            untouched_since=claimed_before,
        ):
            if resend:
                result.resent += 1
                result.deliver.append(pk)
            else:
                result.unknown += 1
    waiting_before = now - timedelta(seconds=settings.EMAIL_QUEUED_TIMEOUT_SECONDS)
    waiting = list(
        EmailLog.objects.filter(status=Status.QUEUED, updated_at__lt=waiting_before)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:batch]
    )
    if waiting:
        # Touched now, so the next sweep leaves them to these deliveries for another timeout.
        EmailLog.objects.filter(pk__in=waiting, status=Status.QUEUED).update(updated_at=now)
        result.deliver.extend(waiting)
    due_before = now - timedelta(seconds=settings.EMAIL_HELD_GRACE_SECONDS)
    due = list(
        EmailLog.objects.filter(status=Status.HELD, held_until__lte=due_before)
        .order_by("held_until")
        .values_list("pk", flat=True)[:batch]
    )
    if due:
        result.released = EmailLog.objects.filter(
            pk__in=due, status=Status.HELD, held_until__lte=due_before
        ).update(status=Status.QUEUED, updated_at=now)
        result.deliver.extend(due)
    return result
