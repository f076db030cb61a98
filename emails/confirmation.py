"""The double opt-in confirmation email, sent through the ordinary send pipeline.

It is the `contacts/confirm` template in the `confirmation` category: the one email the consent
check lets through to a contact who has not confirmed (suppressions still stop it). The contacts app
asks for it after commit through the mailer this module installs (`contacts.confirmation`); its
idempotency key is the request, so the immediate send, the Celery job and the sweep send it once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from celery import shared_task
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from contacts.confirmation import max_age
from contacts.models import ConsentChange
from emails.models import EmailLog
from emails.registry import CONFIRMATION_TEMPLATE

logger = logging.getLogger(__name__)
KEY_PREFIX = "confirmation:"
# A request younger than this is left to its own hand-off before the sweep steps in.
SWEEP_GRACE = timedelta(minutes=1)


def confirmation_send(*, request_id: int) -> EmailLog | None:
    """Send the confirmation email of one request (a `confirmation_requested` ledger row); None if
    there is nothing to send any more (confirmed since, erased, no address)."""
    from contacts.signup import signup_form_get
    from emails.services import email_send

    request = (
        ConsentChange.objects.select_related("contact")
        .filter(pk=request_id, kind=ConsentChange.Kind.CONFIRMATION_REQUESTED)
        .first()
    )
    contact = request.contact if request is not None else None
    if contact is None or contact.erased_at is not None or not contact.email:
        return None
    if not contact.awaiting_confirmation and contact.unsubscribed_at is None:
        return None
    form = signup_form_get(request.detail.get("form", "")) if request.detail.get("form") else None
    return email_send(
        to=contact.email,
        template=CONFIRMATION_TEMPLATE,
        user_id=contact.user_id,
        props={
            "confirmation_id": request.pk,
            "form_title": form.title if form else "",
            "valid_days": max(1, int(max_age().total_seconds() // 86400)),
        },
        idempotency_key=f"{KEY_PREFIX}{request.pk}",
    )


class EmailConfirmationMailer:
    """Installed at start-up: sends at once where a person waits on the page, else via Celery."""

    def send(self, *, request_ids: Sequence[int], at_once: bool) -> None:
        for request_id in request_ids:
            if at_once:
                confirmation_send(request_id=request_id)
                continue
            try:
                # No publish retries: a broker that is down must not hold up the caller's request.
                confirmation_send_task.apply_async(args=[request_id], retry=False)
            except Exception as error:
                logger.warning("could not enqueue confirmation %s (the sweep will): %s", request_id, error)
                return


def confirmations_unsent(*, limit: int = 500) -> list[int]:
    """Requests still within their link's lifetime whose email was never handed to the pipeline."""
    now = timezone.now()
    logged = EmailLog.objects.filter(
        idempotency_key=Concat(Value(KEY_PREFIX), Cast(OuterRef("pk"), CharField()))
    )
    return list(
        ConsentChange.objects.filter(
            kind=ConsentChange.Kind.CONFIRMATION_REQUESTED,
            occurred_at__gte=now - max_age(),
            occurred_at__lte=now - SWEEP_GRACE,
            contact__erased_at__isnull=True,
        )
        .filter(
            Q(contact__confirmation_required=True, contact__confirmed_at__isnull=True)
            | Q(contact__unsubscribed_at__isnull=False)
        )
        .filter(~Exists(logged))
        .order_by("occurred_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- the Celery tasks (here, not in emails.tasks, which the send pipeline imports) ---------------


@shared_task(name="emails.confirmation_send", acks_late=True, ignore_result=True)
def confirmation_send_task(request_id: int) -> None:
    """Send one double opt-in confirmation (its idempotency key makes a repeat a no-op)."""
    confirmation_send(request_id=request_id)


@shared_task(name="emails.confirmations_sweep", ignore_result=True)
def confirmations_sweep_task() -> int:
    """Send confirmations whose hand-off was lost (a broker that was down, a crash after commit)."""
    unsent = confirmations_unsent()
    for request_id in unsent:
        confirmation_send(request_id=request_id)
    return len(unsent)
