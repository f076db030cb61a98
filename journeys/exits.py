"""The journeys' exit rules, as the ingest pipeline applies them inside its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from contacts.models import Event
from journeys.registry import registry


class JourneyExitRules:
    """Installed into `contacts.outbox` at start-up: ingest asks it which runs an event ends."""

    def event_names(self) -> frozenset[str]:
        return frozenset(registry.exit_events())

    def apply(self, *, events: Sequence[Event]) -> dict[UUID, list[UUID]]:
        from journeys.services import runs_exit_for_event

        return {event.id: runs_exit_for_event(event=event) for event in events}
