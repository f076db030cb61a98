"""Double opt-in: confirmation requests, their signed links, and confirming.

1. A signup that needs confirming (a hosted form, or the API with `doubleOptIn`) marks the contact
   `confirmation_required` and writes a `confirmation_requested` row in the consent ledger, in one
   transaction. The link signs that row's id (TimestampSigner, CONFIRMATION_LINK_MAX_AGE_HOURS).
2. After commit the installed mailer sends the confirmation email for the row. The emails app
   installs it at start-up (this app imports no other); its periodic sweep sends any confirmation
   whose hand-off was lost.
3. The link's GET only shows a page with a button (mail scanners prefetch links); its POST confirms
   (`contacts.services.contact_confirm`): `confirmed_at`, the ledger row and `contact.confirmed`
   through ingest (so it can start journeys), all in one transaction. A link that already
   confirmed changes nothing again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from contacts.consent import ConsentVia, Kind, consent_record
from contacts.models import ConsentChange, Contact

logger = logging.getLogger(__name__)
_SALT = "hogsend.confirmation"
CONFIRMED_EVENT = "contact.confirmed"


class ConfirmationLinkError(Exception):
    """A confirmation link we cannot honour; the page says so and nothing changes."""

    status = 400
    title = "This link doesn't work"
    message = (
        "The confirmation link may have been copied incompletely. Use the button in the email, "
        "or sign up again to get a new one."
    )


class ConfirmationLinkExpired(ConfirmationLinkError):
    status = 410
    title = "This confirmation link has expired"
    message = (
        "For your security, confirmation links stop working after a while. Sign up again to get a new one."
    )


class ConfirmationLinkStale(ConfirmationLinkError):
    status = 410
    title = "This confirmation link is no longer valid"
    message = "You unsubscribed after this link was sent. To subscribe again, sign up again."


class ConfirmationMailer(Protocol):
    def send(self, *, request_ids: Sequence[int], at_once: bool) -> None:
        """After commit: send the confirmation email of each request (ledger row id). `at_once`
        sends in this process (a person is waiting on a page); otherwise hand it to a worker."""
        ...


class UnsetMailer:
    def send(self, *, request_ids: Sequence[int], at_once: bool) -> None:
        logger.warning("no confirmation mailer installed; %d confirmation(s) not sent", len(request_ids))


_mailer: ConfirmationMailer = UnsetMailer()


def install_confirmation_mailer(mailer: ConfirmationMailer) -> ConfirmationMailer:
    """Install the mailer (the emails app does at start-up); returns the previous one."""
    global _mailer
    previous, _mailer = _mailer, mailer
    return previous


def confirmation_mailer() -> ConfirmationMailer:
    return _mailer


def max_age() -> timedelta:
    return timedelta(hours=settings.CONFIRMATION_LINK_MAX_AGE_HOURS)


def confirmation_token_make(*, request_id: int) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(str(request_id))


def confirmation_url(*, request_id: int) -> str:
    token = confirmation_token_make(request_id=request_id)
    return settings.PUBLIC_BASE_URL + reverse("signup:confirm", args=[token])


def confirmation_token_read(*, token: str) -> ConsentChange:
    """The confirmation request a link names, or ConfirmationLinkError saying why not."""
    try:
        raw = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=max_age())
    except signing.SignatureExpired:
        raise ConfirmationLinkExpired() from None
    except signing.BadSignature:
        raise ConfirmationLinkError() from None
    request = (
        ConsentChange.objects.select_related("contact")
        .filter(pk=int(raw), kind=Kind.CONFIRMATION_REQUESTED, contact__erased_at__isnull=True)
        .first()
    )
    if request is None or request.contact is None:
        raise ConfirmationLinkError()
    return request


def confirmation_request(
    *, contact: Contact, via: ConsentVia, form: str = "", at_once: bool = False
) -> ConsentChange:
    """Ask a contact to confirm: mark it as needing confirmation, write the ledger row, and have
    the confirmation email sent after commit."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if not locked.confirmation_required:
            locked.confirmation_required = True
            locked.save(update_fields=["confirmation_required", "updated_at"])
        row = consent_record(
            contact=locked, kind=Kind.CONFIRMATION_REQUESTED, via=via, detail={"form": form} if form else {}
        )
        confirmations_send_after_commit(request_ids=[row.pk], at_once=at_once)
    contact.confirmation_required = True
    return row


def confirmations_send_after_commit(*, request_ids: Sequence[int], at_once: bool = False) -> None:
    ids = list(request_ids)
    if ids:
        transaction.on_commit(lambda: _hand_off(ids, at_once))


def _hand_off(request_ids: list[int], at_once: bool) -> None:
    try:
        confirmation_mailer().send(request_ids=request_ids, at_once=at_once)
    except Exception:  # the sweep sends it later; the signup itself is stored
        logger.exception("confirmation hand-off failed for requests %s", request_ids)
