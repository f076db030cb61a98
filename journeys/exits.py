"""The journeys' exit rules, as the ingest pipeline applies them inside its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
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

    def exit_contact(self, *, contact_id: UUID, reason: str) -> list[UUID]:
        from journeys.models import JourneyRun
        from journeys.services import run_exit

        live = list(
            JourneyRun.objects.filter(contact_id=contact_id, status__in=JourneyRun.LIVE_STATUSES).values_list(
                "pk", flat=True
            )
        )
        for run_id in live:
            run_exit(run_id=run_id, reason=reason)
        return live

    def stop_in_engine(self, *, run_ids: Sequence[UUID]) -> Any:
        from journeys.actions import engine_commands

        return engine_commands().cancel_runs(run_ids=run_ids)


def contact_runs_forget(*, contact_id: UUID, email: str) -> None:
    """The erasure seam's forgetter for runs: their properties came from the contact's events."""
    from journeys.models import JourneyRun

    JourneyRun.objects.filter(contact_id=contact_id).update(properties={})
