"""The membership seam: where contacts change, whoever keeps segment membership hears of it.

Ingest calls `membership().after_ingest(...)` inside its transaction, once per set of events, after
the contacts are upserted (which locks their rows until commit, so two ingests for one contact
are evaluated one after the other, each seeing what the other committed). Other changes to a
contact (its consent, its properties through the contacts API) call `contacts_changed`, in the
transaction that made them. The audiences app installs the keeper at start-up; with nothing
installed nothing happens, and the contacts app never imports what keeps segments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from contacts.models import Event


class MembershipKeeper(Protocol):
    def after_ingest(
        self,
        *,
        events: Sequence[Event],
        property_keys: Mapping[UUID, Iterable[str]],
        created: Iterable[UUID],
        now: datetime,
    ) -> None:
        """Inside the ingest transaction: re-check the segments these events, the contact
        properties they set (`property_keys`, by contact) or the contacts they created can change."""
        ...

    def keeps_any(self) -> bool:
        """Whether any segment is kept (a new contact may be in any of them)."""
        ...

    def watches(self, *, event_name: str, property_keys: Iterable[str] = ()) -> bool:
        """Whether an event of this name, setting these contact properties (`$email` for the
        address), can change a known contact's membership: if not, a single event needs no
        transaction for it."""
        ...

    def contacts_changed(
        self,
        *,
        contact_ids: Iterable[UUID],
        property_keys: Iterable[str] = (),
        consent: bool = False,
        created: bool = False,
    ) -> None:
        """The caller's transaction changed these contacts' properties or consent (or created
        them); re-checked once it commits."""
        ...


class NoMembership:
    def keeps_any(self) -> bool:
        return False

    def watches(self, *, event_name: str, property_keys: Iterable[str] = ()) -> bool:
        return False

    def after_ingest(
        self,
        *,
        events: Sequence[Event],
        property_keys: Mapping[UUID, Iterable[str]],
        created: Iterable[UUID],
        now: datetime,
    ) -> None:
        return None

    def contacts_changed(
        self,
        *,
        contact_ids: Iterable[UUID],
        property_keys: Iterable[str] = (),
        consent: bool = False,
        created: bool = False,
    ) -> None:
        return None


_keeper: MembershipKeeper = NoMembership()


def membership() -> MembershipKeeper:
    return _keeper


def install_membership(new: MembershipKeeper | None) -> MembershipKeeper:
    """Install the keeper (audiences does at start-up); returns the previous one."""
    global _keeper
    previous, _keeper = _keeper, new or NoMembership()
    return previous
