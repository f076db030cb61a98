"""Suppressions: addresses nothing may be sent to (bounced, complained, or suppressed by hand).

Part of consent, so at the ground: operators, the provider webhooks and the send pipeline all
reach the list through here, and every change is in the consent ledger.
"""

from __future__ import annotations

from django.db import transaction

from contacts.addresses import EmailError
from contacts.consent import ConsentVia, Kind, Source, consent_record_for_address
from contacts.lifecycle import suppression_emit
from contacts.models import Suppression

# How a suppression arrived when the caller does not say: the provider's report, else the system.
_REASON_SOURCES = {Suppression.Reason.BOUNCE: Source.BOUNCE, Suppression.Reason.COMPLAINT: Source.COMPLAINT}


def suppression_create(
    *, email: str, reason: str = Suppression.Reason.MANUAL, note: str = "", via: ConsentVia | None = None
) -> Suppression:
    """Suppress an address. A complaint outranks an earlier bounce or manual entry; otherwise the
    first reason stays (the note explains the latest). Each change is in the consent ledger."""
    if reason not in Suppression.Reason.values:
        raise EmailError(f"reason must be one of {', '.join(Suppression.Reason.values)}")
    address = email.strip().lower()
    with transaction.atomic():
        suppression, created = Suppression.objects.select_for_update().get_or_create(
            email=address, defaults={"reason": reason, "note": note}
        )
        upgraded = not created and reason == Suppression.Reason.COMPLAINT and suppression.reason != reason
        if upgraded:
            previous = suppression.reason
            suppression.reason, suppression.note = reason, note or suppression.note
            suppression.save(update_fields=["reason", "note"])
        if created or upgraded:
            consent_record_for_address(
                email=address,
                kind=Kind.SUPPRESSED,
                via=via or ConsentVia(source=_REASON_SOURCES.get(reason, Source.SYSTEM)),
                detail={"reason": reason, "note": note[:500]}
                | ({} if created else {"previous_reason": previous}),
            )
        if created:
            suppression_emit(email=address, reason=reason, note=note)
    return suppression


def suppression_remove(*, email: str, via: ConsentVia | None = None) -> int:
    """Lift the suppression of an address (any reason); returns how many rows went."""
    with transaction.atomic():
        reasons = list(
            Suppression.objects.filter(email__iexact=email.strip()).values_list("reason", flat=True)
        )
        deleted, _ = Suppression.objects.filter(email__iexact=email.strip()).delete()
        if deleted:
            consent_record_for_address(
                email=email.strip().lower(),
                kind=Kind.UNSUPPRESSED,
                via=via or ConsentVia(source=Source.SYSTEM),
                detail={"reason": reasons[0] if reasons else ""},
            )
    return deleted
