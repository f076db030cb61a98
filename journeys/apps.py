from __future__ import annotations

from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from contacts.outbox import install_exit_rules
        from journeys import checks  # noqa: F401  (registers the system checks)
        from journeys.exits import JourneyExitRules
        from journeys.registry import load_journey_modules

        load_journey_modules()
        install_exit_rules(JourneyExitRules())
