"""The consent ledger: every change of consent is a row, written in the transaction that made it.

A row says what changed (kind, category), when, where the change came from (`source`: the signup
form, the confirmation link, the preference center, one-click unsubscribe, the Studio, the admin
API, an import, a bounce or complaint), who acted if an operator did, the IP address and user agent
where a person's request made it, and the SHA-256 of the signed link used.

Services that change consent take a `ConsentVia` (how the change arrived) and call
`consent_record` inside their own transaction, so a change and its row commit or roll back together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from contacts.membership import membership
from contacts.models import ConsentChange, Contact

Kind = ConsentChange.Kind
Source = ConsentChange.Source
USER_AGENT_MAX = 500


def request_ip(request: HttpRequest) -> str | None:
    """The client's address as the login throttle sees it (TRUSTED_PROXY_COUNT behind a proxy)."""
    from axes.helpers import get_client_ip_address

    return get_client_ip_address(request) or None


@dataclass(frozen=True)
class ConsentVia:
    """How a consent change arrived: its source, and the request details we know."""

    source: str
    ip: str | None = None
    user_agent: str = ""
    token: str = ""
    actor: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_request(cls, request: HttpRequest, *, source: str, token: str = "", **detail: Any) -> ConsentVia:
        return cls(
            source=source,
            ip=request_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
            token=token,
            detail=detail,
        )

    @classmethod
    def operator(cls, actor: Any, **detail: Any) -> ConsentVia:
        """An operator's change: the Studio for a user, the admin API for a key's label (a string)."""
        if isinstance(actor, str):
            return cls(source=Source.ADMIN_API, actor=actor[:150], detail=detail)
        label = getattr(actor, "get_username", lambda: "")() if actor is not None else ""
        return cls(source=Source.STUDIO, actor=label[:150], detail=detail)


SYSTEM = ConsentVia(source=Source.SYSTEM)


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


def _row(
    *, contact: Contact | None, email: str, kind: str, via: ConsentVia, category: str, detail: dict
) -> ConsentChange:
    return ConsentChange(
        contact=contact,
        email=email.strip().lower()[:320],
        kind=kind,
        category=category,
        source=via.source,
        actor=via.actor,
        ip_address=via.ip,
        user_agent=via.user_agent[:USER_AGENT_MAX],
        token_sha256=token_fingerprint(via.token),
        detail={**via.detail, **detail},
    )


def consent_record(
    *,
    contact: Contact | None,
    kind: str,
    via: ConsentVia,
    email: str | None = None,
    category: str = "",
    detail: dict[str, Any] | None = None,
) -> ConsentChange:
    """Write one ledger row. Call it inside the transaction that makes the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("consent_record must run in the transaction that changes consent")
    address = email if email is not None else (contact.email if contact is not None else "")
    row = _row(contact=contact, email=address, kind=kind, via=via, category=category, detail=detail or {})
    row.save(force_insert=True)
    if contact is not None:
        membership().contacts_changed(contact_ids=[contact.pk], consent=True)
    return row


def consent_record_for_address(
    *, email: str, kind: str, via: ConsentVia, detail: dict[str, Any] | None = None
) -> list[ConsentChange]:
    """A change to an address (a suppression): one row on each contact that has it, or one row
    with no contact if none does yet."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("consent_record_for_address must run in the transaction that changes consent")
    people: Iterable[Contact | None] = list(
        Contact.objects.filter(email__iexact=email.strip(), erased_at__isnull=True).only("pk", "email")
    ) or [None]
    rows = [
        _row(contact=c, email=email, kind=kind, via=via, category="", detail=detail or {}) for c in people
    ]
    membership().contacts_changed(contact_ids=[c.pk for c in people if c is not None], consent=True)
    return ConsentChange.objects.bulk_create(rows)


def consent_history(*, contact: Contact, limit: int | None = None) -> list[ConsentChange]:
    """The contact's ledger, newest first (rows about its address before it existed included)."""
    rows = ConsentChange.objects.filter(contact=contact)
    if contact.email:
        rows = rows | ConsentChange.objects.filter(contact__isnull=True, email=contact.email.strip().lower())
    rows = rows.order_by("-occurred_at", "-id")
    return list(rows[:limit] if limit else rows)


def consent_change_out(row: ConsentChange) -> dict[str, Any]:
    """A ledger row as the contact's data export and the API show it."""
    return {
        "at": row.occurred_at.isoformat(),
        "kind": row.kind,
        "category": row.category,
        "source": row.source,
        "email": row.email,
        "actor": row.actor,
        "ip": row.ip_address,
        "userAgent": row.user_agent,
        "tokenSha256": row.token_sha256,
        "detail": row.detail,
    }
