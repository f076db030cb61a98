from __future__ import annotations

from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from journeys import checks  # noqa: F401  (registers the system checks)
        from journeys.registry import load_journey_modules

        load_journey_modules()
