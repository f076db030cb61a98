"""Thin Celery tasks: each calls one service and owns only its retry policy."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from emails.delivery import EmailDeliveryDeferred, email_deliver, email_release
from emails.models import EmailLog
from emails.sweep import email_sweep


@shared_task(
    name="emails.email_deliver",
    bind=True,
    autoretry_for=(EmailDeliveryDeferred,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
    acks_late=True,
)
def email_deliver_task(self, email_id: str) -> str:
    """Deliver a queued email: a transient failure's retry (timeout, 429, 5xx) or the sweep's
    hand-back. The last attempt records `failed`."""
    log = email_deliver(email_id=email_id, final_attempt=self.request.retries >= self.max_retries)
    return log.status


@shared_task(name="emails.sweep", ignore_result=True)
def email_sweep_task() -> dict[str, int]:
    """Settle rows a crash left `sending`, deliver rows left `queued` and held rows whose moment
    passed without their release (emails.sweep)."""
    swept = email_sweep()
    for email_id in swept.deliver:
        email_deliver_task.apply_async(args=[str(email_id)])
    return {
        "delivered": len(swept.deliver),
        "resent": swept.resent,
        "unknown": swept.unknown,
        "released": swept.released,
    }


@shared_task(name="emails.email_release", bind=True, ignore_result=True, acks_late=True)
def email_release_task(self, email_id: str) -> str:
    """Deliver a held email once its `held_until` has come (scheduled with that eta). A moment that
    moved later meanwhile is scheduled again; the sweep releases whatever this task missed."""
    try:
        log = email_release(email_id=email_id)
    except EmailDeliveryDeferred:
        email_deliver_task.apply_async(args=[email_id], countdown=settings.EMAIL_RETRY_FIRST_DELAY_SECONDS)
        return EmailLog.Status.QUEUED
    moved_later = log.status == EmailLog.Status.HELD and log.held_until and log.held_until > timezone.now()
    if moved_later and not self.request.is_eager:  # run eagerly, an eta means nothing
        email_release_task.apply_async(args=[email_id], eta=log.held_until)
    return log.status
