"""Writes for contacts, events and API keys; the ingest pipeline itself is `contacts.ingest`."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from django.db import transaction
from django.utils import timezone

from contacts.confirmation import CONFIRMED_EVENT, ConfirmationLinkError, ConfirmationLinkStale
from contacts.consent import SYSTEM, ConsentVia, Kind, consent_record
from contacts.erasure import contact_forget_everywhere
from contacts.ingest import IngestError, event_ingest
from contacts.lifecycle import contact_emit  # lifecycle events for destinations
from contacts.membership import membership
from contacts.models import ApiKey, ConsentChange, Contact, Event
from contacts.outbox import exit_rules
from contacts.timezones import TIMEZONE_PROPERTY, timezone_problem


def contact_upsert(
    *,
    user_id: str,
    email: str | None = None,
    properties: dict[str, Any] | None = None,
    double_opt_in: bool | None = None,
) -> tuple[Contact, bool]:
    """Create the contact or merge into it: new properties win, absent ones are kept. A contact
    this creates with double opt-in (or CONTACTS_DOUBLE_OPT_IN) is sent a confirmation email and
    nothing else until it confirms."""
    from django.conf import settings

    from contacts.confirmation import confirmation_request
    from contacts.consent import Source

    if not user_id:
        raise IngestError("userId is required")
    if properties and TIMEZONE_PROPERTY in properties:
        problem = timezone_problem(properties[TIMEZONE_PROPERTY])
        if problem:
            raise IngestError(f"properties.{TIMEZONE_PROPERTY}: {problem}")
    confirm = settings.CONTACTS_DOUBLE_OPT_IN if double_opt_in is None else double_opt_in
    with transaction.atomic():
        contact, created = Contact.objects.get_or_create(
            user_id=user_id,
            defaults={"email": email or "", "properties": properties or {}, "confirmation_required": confirm},
        )
        if created:
            contact_emit(type="contact.created", contact_id=contact.pk)
            if confirm and contact.email:
                confirmation_request(contact=contact, via=ConsentVia(source=Source.API))
            membership().contacts_changed(contact_ids=[contact.pk], created=True)
            return contact, True
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        changed = []
        if email and email != contact.email:
            contact.email = email
            changed.append("email")
        if properties:
            merged = {**contact.properties, **properties}
            if merged != contact.properties:
                contact.properties = merged
                changed.append("properties")
        if changed:
            contact.save(update_fields=[*changed, "updated_at"])
            contact_emit(type="contact.updated", contact_id=contact.pk)
            membership().contacts_changed(
                contact_ids=[contact.pk],
                property_keys=[*(properties or {}), *(["$email"] if "email" in changed else [])],
            )
        return contact, False


def contact_unsubscribe(*, contact: Contact, via: ConsentVia = SYSTEM) -> Contact:
    """Unsubscribe from everything but transactional mail; the ledger records how. Idempotent."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if locked.unsubscribed_at is None:
            locked.unsubscribed_at = timezone.now()
            locked.save(update_fields=["unsubscribed_at", "updated_at"])
            consent_record(contact=locked, kind=Kind.UNSUBSCRIBED, via=via)
            contact_emit(type="contact.unsubscribed", contact_id=locked.pk)
    contact.unsubscribed_at = locked.unsubscribed_at
    return locked


def contact_resubscribe(*, contact: Contact, via: ConsentVia = SYSTEM) -> Contact:
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if locked.unsubscribed_at is not None:
            locked.unsubscribed_at = None
            locked.save(update_fields=["unsubscribed_at", "updated_at"])
            consent_record(contact=locked, kind=Kind.RESUBSCRIBED, via=via)
            contact_emit(type="contact.resubscribed", contact_id=locked.pk)
    contact.unsubscribed_at = locked.unsubscribed_at
    return locked


# --- API keys --------------------------------------------------------------------------------


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    rate_limit: int | None = None,
    allowed_origins: Iterable[str] = (),
) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is never stored and never shown again.

    The `public` scope makes a publishable key (`pk_...`): alone, with at least one origin.
    """
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise ValueError(
            f"scopes must be some of {', '.join(ApiKey.Scope.values)}; got {', '.join(scopes) or 'none'}"
        )
    origins = sorted({origin_normalize(origin) for origin in allowed_origins})
    publishable = ApiKey.Scope.PUBLIC in scopes
    if publishable and scopes != [ApiKey.Scope.PUBLIC]:
        raise ValueError(
            "the public scope stands alone: a publishable key is seen by everyone who loads your page; "
            "create a secret key for the other scopes"
        )
    if publishable and not origins:
        raise ValueError("a publishable key needs at least one allowed origin, e.g. https://app.example.com")
    if origins and not publishable:
        raise ValueError("only publishable keys (the public scope) have allowed origins")
    prefix = secrets.token_hex(4)
    secret = f"{'pk' if publishable else 'hsk'}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(secret),
        scopes=scopes,
        expires_at=expires_at,
        rate_limit=rate_limit,
        allowed_origins=origins,
    )
    return key, secret


def origin_normalize(origin: str) -> str:
    """`scheme://host[:port]` as browsers send it in `Origin`; anything else is a ValueError."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{origin!r} is not an origin; write it as https://app.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(
            f"{origin!r} is not an origin: leave out the path; write it as https://app.example.com"
        )
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    from contacts.selectors import api_key_forget

    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    api_key_forget(key.key_hash)
    return key


# --- Studio: operator changes, each one audited ------------------------------------------------


def audit_record(
    *,
    actor: Any,
    action: str,
    target_type: str,
    target_id: str,
    detail: dict[str, Any] | None = None,
) -> Any:
    """Write one audit row for an operator change (Studio calls this for every action)."""
    from contacts.models import AuditEntry

    label = ""
    if actor is not None:
        label = getattr(actor, "get_username", lambda: str(actor))()
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=label[:150],
        action=action[:64],
        target_type=target_type[:64],
        target_id=str(target_id)[:100],
        detail=detail or {},
    )


def contact_erase(*, contact: Contact, via: ConsentVia = SYSTEM) -> list[UUID]:
    """Remove a contact's personal data but keep its rows, so aggregate counts stay right.

    1. Lock the contact; blank its email, empty its properties, give it an `erased-<uuid>` user id,
       unsubscribe it and stamp `erased_at`.
    2. Empty its events' properties, and its consent ledger's address, IP and user agent (the rows
       stay: when and how consent changed), then add the ledger row for the erasure; every app
       above forgets what it keeps (`contacts.erasure`: runs' properties, email logs, deliveries).
    3. Mark its live runs exited (`contact_erased`) and return their ids for the engine cancel.
    """
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        old_email = contact.email
        now = timezone.now()
        contact.email = ""
        contact.properties = {}
        contact.user_id = f"erased-{uuid4()}"
        contact.unsubscribed_at = contact.unsubscribed_at or now
        contact.erased_at = now
        contact.save()
        Event.objects.filter(contact=contact).update(properties={})
        contact.consent_changes.update(email="", ip_address=None, user_agent="")
        consent_record(contact=contact, kind=Kind.ERASED, via=via, email="")
        # What the apps above keep (runs, email logs, deliveries), through the erasure seam; then
        # its live runs end, through the journeys' seam.
        contact_forget_everywhere(contact_id=contact.pk, email=old_email)
        live = exit_rules().exit_contact(contact_id=contact.pk, reason="contact_erased")
    return live


# --- consent: the preference center and operators change it through these ----------------------


def contact_category_set(
    *, contact: Contact, category: str, subscribed: bool, via: ConsentVia = SYSTEM
) -> Contact:
    """Turn one category on or off for a contact. Default-on categories record an opt-out,
    default-off ones an opt-in; the other list is cleared so a choice is never contradicted."""
    from contacts.categories import category_get

    spec = category_get(category)
    if not spec.user_manageable:
        raise ValueError(f"category {category!r} cannot be switched off by a contact")
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        opt_outs = [c for c in contact.category_opt_outs if c != category]
        opt_ins = [c for c in contact.category_opt_ins if c != category]
        if spec.default_opt_in and not subscribed:
            opt_outs.append(category)
        if not spec.default_opt_in and subscribed:
            opt_ins.append(category)
        if opt_outs != contact.category_opt_outs or opt_ins != contact.category_opt_ins:
            contact.category_opt_outs, contact.category_opt_ins = opt_outs, opt_ins
            contact.save(update_fields=["category_opt_outs", "category_opt_ins", "updated_at"])
            kind = Kind.CATEGORY_OPTED_IN if subscribed else Kind.CATEGORY_OPTED_OUT
            consent_record(contact=contact, kind=kind, via=via, category=category)
    return contact


def contact_preferences_save(
    *, contact: Contact, subscribed: Iterable[str], via: ConsentVia = SYSTEM
) -> Contact:
    """Save the preference center form: every manageable category in `subscribed` is on, the rest off."""
    from contacts.categories import manageable_categories

    wanted = set(subscribed)
    with transaction.atomic():
        for category in manageable_categories():
            contact = contact_category_set(
                contact=contact, category=category.id, subscribed=category.id in wanted, via=via
            )
    return contact


# --- double opt-in: a confirmation link's POST (`contacts.confirmation` has the requests) --------


@dataclass(frozen=True)
class ConfirmOutcome:
    contact: Contact
    changed: bool  # False: this link had confirmed already, or there was nothing left to confirm


def contact_confirm(*, request: ConsentChange, via: ConsentVia) -> ConfirmOutcome:
    """Confirm the signup a link names (the page's POST calls this; never a GET).

    1. Lock the contact. A link that already confirmed (its ledger rows exist) changes nothing.
       A link older than a later unsubscribe is stale: ConfirmationLinkStale, nothing changes.
    2. Stamp `confirmed_at` (and resubscribe someone who signed up again after unsubscribing),
       each with its ledger row naming the request.
    3. Emit `contact.confirmed` through ingest, keyed by the request so it is stored once.
    """
    form = request.detail.get("form", "")
    via = ConsentVia(
        source=via.source,
        ip=via.ip,
        user_agent=via.user_agent,
        token=via.token,
        detail={**via.detail, "request": request.pk, **({"form": form} if form else {})},
    )
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=request.contact_id)
        if contact.erased_at is not None:
            raise ConfirmationLinkError()
        done_by_this_link = contact.consent_changes.filter(
            kind__in=[Kind.CONFIRMED, Kind.RESUBSCRIBED], detail__request=request.pk
        ).exists()
        if done_by_this_link:
            return ConfirmOutcome(contact=contact, changed=False)
        if contact.consent_changes.filter(kind=Kind.UNSUBSCRIBED, pk__gt=request.pk).exists():
            raise ConfirmationLinkStale()
        changed = False
        if contact.confirmed_at is None:
            contact.confirmed_at = timezone.now()
            contact.save(update_fields=["confirmed_at", "updated_at"])
            consent_record(contact=contact, kind=Kind.CONFIRMED, via=via)
            changed = True
        if contact.unsubscribed_at is not None:
            contact = contact_resubscribe(contact=contact, via=via)
            changed = True
        if changed:
            contact_emit(type="contact.confirmed", contact_id=contact.pk)  # for destinations
            event_ingest(
                name=CONFIRMED_EVENT,
                user_id=contact.user_id,
                properties={"form": form, "requestedAt": request.occurred_at.isoformat()},
                idempotency_key=f"{CONFIRMED_EVENT}:{request.pk}",
                source=Event.Source.SYSTEM,
            )
    return ConfirmOutcome(contact=contact, changed=changed)
