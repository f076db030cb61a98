"""The erasure seam: every app above the ground that keeps a contact's personal data says how to
forget it, at start-up; `contacts.services.contact_erase` calls each one inside its transaction.

A forgetter takes the contact's id and its address before the erasure (rows sent to that address
may not carry the contact's id) and scrubs or deletes what its app holds; it sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

Forgetter = Callable[..., None]  # forget(*, contact_id: UUID, email: str) -> None

_forgetters: dict[str, Forgetter] = {}


def forgetter_install(*, name: str, forget: Forgetter) -> None:
    """Install (or replace) the named app's forgetter; they run in the order first installed."""
    _forgetters[name] = forget


def contact_forget_everywhere(*, contact_id: UUID, email: str) -> None:
    for forget in _forgetters.values():
        forget(contact_id=contact_id, email=email)
