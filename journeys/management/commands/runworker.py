from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the Hatchet worker: every enabled journey and custom durable task. SIGTERM drains and exits."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--slots", type=int, default=200, help="concurrent non-durable task slots")
        parser.add_argument(
            "--durable-slots",
            type=int,
            default=20000,
            help="journey runs held at once, parked ones included (evicted runs free theirs)",
        )
        parser.add_argument(
            "--no-relay",
            action="store_true",
            help="do not run an outbox relay in this process (run `manage.py relay` elsewhere)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import logging

        from journeys.deploy_check import journeys_check_log
        from journeys.runtime.worker import run_worker

        # What this deploy does to parked runs, before the worker replays any of them.
        journeys_check_log(logging.getLogger("journeys.deploy_check"))

        run_worker(
            slots=options["slots"],
            durable_slots=options["durable_slots"],
            relay=settings.WORKER_RELAY and not options["no_relay"],
        )
