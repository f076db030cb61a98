"""The lifecycle seam: where a contact, an email or a run changes, the apps say so here.

Contacts, emails and journeys announce their lifecycle transitions (contact.created,
email.sent, journey.exited, ...) through these one-line hooks, by id, inside the transaction that
made the change. They never import what listens: the integrations app installs its announcer at
start-up (`integrations.apps`), which writes a delivery row per interested destination in the
caller's transaction and sends nothing before commit. With nothing installed, nothing is said.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID


class Lifecycle(Protocol):
    def contact(self, *, type: str, contact_id: UUID | str) -> None:
        """contact.created / updated / unsubscribed / resubscribed."""
        ...

    def contacts_upserted(self, *, contacts: Iterable[Any], now: datetime) -> None:
        """After a set-based upsert: rows created at `now` are new, rows written at `now` changed."""
        ...

    def contacts_listened(self) -> bool:
        """Whether anything hears contact.created/updated now: when nothing does, ingest stores a
        single event with one statement and no transaction around it."""
        ...

    def suppression(self, *, email: str, reason: str, note: str = "") -> None:
        """contact.suppressed."""
        ...

    def run(self, *, type: str, run_id: UUID | str) -> None:
        """journey.entered / completed / exited / failed."""
        ...

    def email(self, *, email_id: UUID | str, status: str) -> None:
        """email.<status> for every status the email log reaches."""
        ...


class Silent:
    def contact(self, *, type: str, contact_id: UUID | str) -> None:
        return None

    def contacts_upserted(self, *, contacts: Iterable[Any], now: datetime) -> None:
        return None

    def contacts_listened(self) -> bool:
        return False

    def suppression(self, *, email: str, reason: str, note: str = "") -> None:
        return None

    def run(self, *, type: str, run_id: UUID | str) -> None:
        return None

    def email(self, *, email_id: UUID | str, status: str) -> None:
        return None


_lifecycle: Lifecycle = Silent()


def install_lifecycle(new: Lifecycle | None) -> Lifecycle:
    """Install the announcer (integrations does at start-up); returns the previous one."""
    global _lifecycle
    previous, _lifecycle = _lifecycle, new or Silent()
    return previous


def contact_emit(*, type: str, contact_id: UUID | str) -> None:
    _lifecycle.contact(type=type, contact_id=contact_id)


def contacts_upserted_emit(*, contacts: Iterable[Any], now: datetime) -> None:
    _lifecycle.contacts_upserted(contacts=contacts, now=now)


def contacts_listened() -> bool:
    return _lifecycle.contacts_listened()


def suppression_emit(*, email: str, reason: str, note: str = "") -> None:
    _lifecycle.suppression(email=email, reason=reason, note=note)


def run_emit(*, type: str, run_id: UUID | str) -> None:
    _lifecycle.run(type=type, run_id=run_id)


def email_emit(*, email_id: UUID | str, status: str) -> None:
    _lifecycle.email(email_id=email_id, status=status)
