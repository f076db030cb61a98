"""Thin Celery tasks: each calls one service and owns only its retry policy."""

from __future__ import annotations

from celery import shared_task

from emails.delivery import EmailDeliveryDeferred, email_deliver
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
    """Settle rows a crash left `sending` and deliver rows left `queued` (emails.sweep)."""
    swept = email_sweep()
    for email_id in swept.deliver:
        email_deliver_task.apply_async(args=[str(email_id)])
    return {"delivered": len(swept.deliver), "resent": swept.resent, "unknown": swept.unknown}
