"""Operator actions on contacts and suppressions. The Studio and the admin API call these, nothing else.

Each action is one transaction that makes the change and writes its audit entry together; runs an
action ends are stopped in the engine after commit, through the seam the journeys app installs
(`contacts.outbox.exit_rules`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import transaction

from contacts.addresses import email_address_check
from contacts.consent import ConsentVia, Kind, consent_record_for_address
from contacts.models import Contact, Suppression
from contacts.outbox import exit_rules
from contacts.services import audit_record, contact_erase, contact_resubscribe, contact_unsubscribe
from contacts.suppressions import suppression_create, suppression_remove


class ContactActionError(ValueError):
    """An operator asked for something this contact's state does not allow; the message says why."""


def _audit_contact(actor: Any, contact: Contact, action: str, **detail: Any) -> None:
    audit_record(actor=actor, action=action, target_type="contact", target_id=str(contact.pk), detail=detail)


def _require_not_erased(contact: Contact) -> None:
    if contact.erased_at is not None:
        raise ContactActionError("this contact was erased; there is nothing left to change")


@dataclass
class ContactErased:
    contact: Contact
    exited_run_ids: list[UUID] = field(default_factory=list)
    handoff: Any = None  # journeys.actions.Handoff for the engine cancel, if any run was live


def contact_erase_by_operator(*, actor: Any, contact: Contact) -> ContactErased:
    """Erase a contact's personal data (rows stay, for aggregate counts), audit it without the data
    it erased, and stop its live runs in the engine after commit."""
    _require_not_erased(contact)
    old_user_id = contact.user_id
    with transaction.atomic():
        exited = contact_erase(contact=contact, via=ConsentVia.operator(actor))
        _audit_contact(
            actor,
            contact,
            "contact.erase",
            exited_runs=[str(r) for r in exited],
            previous_user_id_hash=hashlib.sha256(old_user_id.encode()).hexdigest()[:16],
        )
        handoff = exit_rules().stop_in_engine(run_ids=exited) if exited else None
    contact.refresh_from_db()
    return ContactErased(contact=contact, exited_run_ids=exited, handoff=handoff)


def contact_unsubscribe_by_operator(*, actor: Any, contact: Contact) -> Contact:
    _require_not_erased(contact)
    with transaction.atomic():
        contact = contact_unsubscribe(contact=contact, via=ConsentVia.operator(actor))
        _audit_contact(actor, contact, "contact.unsubscribe")
    return contact


def contact_resubscribe_by_operator(*, actor: Any, contact: Contact) -> Contact:
    _require_not_erased(contact)
    with transaction.atomic():
        contact = contact_resubscribe(contact=contact, via=ConsentVia.operator(actor))
        _audit_contact(actor, contact, "contact.resubscribe")
    return contact


def suppression_add_by_operator(
    *,
    actor: Any,
    email: str,
    reason: str = Suppression.Reason.MANUAL,
    note: str = "",
    contact: Contact | None = None,
) -> Suppression:
    """Suppress an address (audited on the contact when the operator acted from its page). Asking
    again for an address already suppressed changes nothing and writes no audit entry."""
    if contact is not None:
        _require_not_erased(contact)
    address = email_address_check(email)
    with transaction.atomic():
        before = Suppression.objects.filter(email__iexact=address).values_list("reason", flat=True).first()
        suppression = suppression_create(
            email=address, reason=reason, note=note[:500], via=ConsentVia.operator(actor, note=note[:500])
        )
        if before == suppression.reason:
            return suppression
        if contact is not None:
            _audit_contact(
                actor, contact, "contact.suppress", email=address, reason=suppression.reason, note=note
            )
        else:
            audit_record(
                actor=actor,
                action="suppression.add",
                target_type="suppression",
                target_id=suppression.email,
                detail={"reason": suppression.reason, "note": note},
            )
    return suppression


def suppression_change_by_operator(
    *, actor: Any, suppression: Suppression, reason: str, note: str
) -> Suppression:
    """Correct a suppression's reason or note by hand."""
    if reason not in Suppression.Reason.values:
        raise ContactActionError(f"reason must be one of {', '.join(Suppression.Reason.values)}")
    with transaction.atomic():
        # From the row, not the instance: the admin form has already written its values onto it.
        before = (
            Suppression.objects.select_for_update()
            .filter(pk=suppression.pk)
            .values_list("reason", flat=True)
            .first()
        )
        Suppression.objects.filter(pk=suppression.pk).update(reason=reason, note=note)
        suppression.reason, suppression.note = reason, note
        if before != reason:
            consent_record_for_address(
                email=suppression.email,
                kind=Kind.SUPPRESSED,
                via=ConsentVia.operator(actor),
                detail={"reason": reason, "previous_reason": before},
            )
        audit_record(
            actor=actor,
            action="suppression.change",
            target_type="suppression",
            target_id=suppression.email,
            detail={"before": before, "reason": reason},
        )
    return suppression


def suppression_remove_by_operator(*, actor: Any, email: str, contact: Contact | None = None) -> int:
    """Lift an address's suppression; returns how many rows went (0 if it was not suppressed)."""
    with transaction.atomic():
        reasons = list(
            Suppression.objects.filter(email__iexact=email.strip()).values_list("reason", flat=True)
        )
        removed = suppression_remove(email=email, via=ConsentVia.operator(actor)) if email else 0
        if contact is not None:
            _audit_contact(actor, contact, "contact.unsuppress", email=email, removed=removed)
        elif removed:
            audit_record(
                actor=actor,
                action="suppression.remove",
                target_type="suppression",
                target_id=email.strip().lower(),
                detail={"reason": reasons[0] if reasons else ""},
            )
    return removed


def api_key_actor(key: Any) -> str:
    """How an admin-API call names its actor in the audit log: the key's name and public prefix."""
    return f"api key {key.name} (hsk_{key.prefix}…)"
