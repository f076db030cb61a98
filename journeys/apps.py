from __future__ import annotations

from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        # The seams the lower apps call up through: ingest's exit rules, a send's run liveness.
        from contacts.outbox import install_exit_rules
        from emails.liveness import install_liveness
        from journeys import checks  # noqa: F401  (registers the system checks)
        from journeys.exits import JourneyExitRules
        from journeys.registry import load_journey_modules
        from journeys.send import JourneyRunLiveness

        load_journey_modules()
        install_exit_rules(JourneyExitRules())
        install_liveness(JourneyRunLiveness())
