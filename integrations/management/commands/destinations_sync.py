"""Write the destinations listed in INTEGRATIONS_DESTINATIONS (also done after every migrate)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from integrations.outbound import destinations_sync_from_settings


class Command(BaseCommand):
    help = "Create or update the destinations of INTEGRATIONS_DESTINATIONS; remove ones no longer listed."

    def handle(self, *args: Any, **options: Any) -> None:
        count = destinations_sync_from_settings()
        self.stdout.write(f"{count} destination(s) from settings")
