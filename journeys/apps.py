from __future__ import annotations

from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        # The seams the lower apps call up through: ingest's exit rules (and an erasure's), goals and
        # digest collection (and what a run's end does to its digests), a send's run liveness, what
        # an erasure forgets of runs.
        from contacts.conversions import install_goal_rules
        from contacts.erasure import forgetter_install
        from contacts.outbox import install_event_collector, install_exit_rules
        from contacts.selectors import timeline_source_install
        from emails.liveness import install_liveness
        from journeys import checks  # noqa: F401  (registers the system checks)
        from journeys.digests import JourneyDigests, digest_run_ended
        from journeys.exits import JourneyExitRules, contact_runs_forget
        from journeys.experiments import JourneyGoalRules
        from journeys.registry import load_journey_modules
        from journeys.run_selectors import contact_runs_timeline
        from journeys.send import JourneyRunLiveness
        from journeys.services import run_end_observe

        load_journey_modules()
        install_exit_rules(JourneyExitRules())
        install_event_collector(JourneyDigests())
        run_end_observe(digest_run_ended)
        install_liveness(JourneyRunLiveness())
        install_goal_rules(JourneyGoalRules())
        forgetter_install(name="journeys", forget=contact_runs_forget)
        timeline_source_install(name="journeys", source=contact_runs_timeline)
