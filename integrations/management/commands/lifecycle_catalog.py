"""Print the lifecycle event catalog: every type with its version and JSON Schema."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from integrations.catalog import CATALOG, ENVELOPE_SCHEMA


class Command(BaseCommand):
    help = "Print the lifecycle events Hogsend emits to destinations, with their JSON Schemas."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--list", action="store_true", help="one line per type instead of the schemas")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for spec in CATALOG.values():
                self.stdout.write(f"{spec.type:24} v{spec.version}  {spec.description}")
            return
        document = {"envelope": ENVELOPE_SCHEMA, "events": {t: s.schema for t, s in CATALOG.items()}}
        self.stdout.write(json.dumps(document, indent=2))
