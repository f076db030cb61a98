from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from journeys.runtime.engine import events_redispatch


class Command(BaseCommand):
    help = "Push events still waiting in the outbox to the engine (what the periodic sweep does)."

    def handle(self, *args: Any, **options: Any) -> None:
        pushed = events_redispatch(older_than_seconds=0)
        self.stdout.write(f"pushed {pushed} pending events")
