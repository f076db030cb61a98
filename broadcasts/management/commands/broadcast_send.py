"""`manage.py broadcast_send NAME --template KEY [--props JSON] [--filter JSON | --segment ID]
[--at ISO | --local-time HH:MM --local-date YYYY-MM-DD] [--rate N] [--priority N] [--on-cap skip|defer]
[--wait]`: create a broadcast from the command line; `--wait` follows it with
the live progress bar of `broadcast_progress`."""

from __future__ import annotations

import json

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from broadcasts.services import BroadcastError, broadcast_create


class Command(BaseCommand):
    help = "Create (and start) a broadcast."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--template", default="")
        parser.add_argument("--journey", default="", help="enroll into this journey instead of sending")
        parser.add_argument("--props", default="{}", help="the template's props as JSON")
        parser.add_argument("--category", default="")
        parser.add_argument(
            "--filter", default="[]", help='e.g. [{"property": "plan", "operator": "eq", "value": "pro"}]'
        )
        parser.add_argument("--segment", default="")
        parser.add_argument("--at", default="", help="ISO moment to start at (default: now)")
        parser.add_argument(
            "--local-time", default="", help="HH:MM in each recipient's own time zone, on --local-date"
        )
        parser.add_argument("--local-date", default="", help="the day of --local-time, YYYY-MM-DD")
        parser.add_argument("--rate", type=float, default=50.0, help="sends per second (0: unthrottled)")
        parser.add_argument("--priority", type=int, default=0, help="-100..100: who keeps a capped slot")
        parser.add_argument(
            "--on-cap",
            default="skip",
            choices=["skip", "defer"],
            help="a frequency-capped send: skip or defer",
        )
        parser.add_argument("--wait", action="store_true", help="follow it with a live progress bar")

    def handle(self, *args, **o):
        try:
            props, conditions = json.loads(o["props"]), json.loads(o["filter"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--props and --filter are JSON: {error}") from None
        send_at = parse_datetime(o["at"]) if o["at"] else None
        if o["at"] and (send_at is None or send_at.tzinfo is None):
            raise CommandError("--at is an ISO 8601 moment with its offset, e.g. 2026-12-03T10:00:00+00:00")
        try:
            broadcast = broadcast_create(
                name=o["name"], template=o["template"], journey_id=o["journey"], props=props,
                category=o["category"], segment_id=o["segment"], conditions=conditions,
                send_at=send_at, local_time=o["local_time"] or None, local_date=o["local_date"] or None,
                rate=o["rate"], priority=o["priority"], on_cap=o["on_cap"], actor="manage.py broadcast_send",
            )  # fmt: skip
        except BroadcastError as error:
            raise CommandError(f"--{_option(error.field) or 'state'}: {error}") from None
        self.stdout.write(
            f"broadcast {broadcast.pk}: {broadcast.status}, {broadcast.recipients_total} recipients"
        )
        if o["wait"]:
            call_command("broadcast_progress", str(broadcast.pk), stdout=self.stdout, stderr=self.stderr)


def _option(field: str) -> str:
    """The command-line option of a service field: localTime → local-time, sendAt → at."""
    names = {"sendAt": "at", "localTime": "local-time", "localDate": "local-date", "onCap": "on-cap"}
    return names.get(field, field)
