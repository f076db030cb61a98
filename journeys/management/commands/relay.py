from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the outbox relay alone: push stored events to the engine as they arrive. Every runworker "
        "already runs one; use this to run relays apart from workers. SIGTERM stops it."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="settle what is pending now, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        from journeys.runtime.relay import OutboxRelay, RelayThread

        if options["once"]:
            self.stdout.write(f"pushed {OutboxRelay().drain()} events")
            return
        thread = RelayThread()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: thread.stop())
        thread.start()
        while thread.is_alive():
            thread.join(timeout=0.5)
