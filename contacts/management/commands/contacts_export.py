"""`manage.py contacts_export`: every contact with its consent state, as CSV or JSON lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from contacts.exports import contacts_export


class Command(BaseCommand):
    help = "Export contacts (not erased ones) with their consent state, streamed, to a file or stdout."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--output", "-o", type=Path, help="default: standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"]
        if output is None:
            for piece in contacts_export(fmt=options["format"]):
                self.stdout.write(piece, ending="")
            return
        with output.open("w", newline="", encoding="utf-8") as handle:
            for piece in contacts_export(fmt=options["format"]):
                handle.write(piece)
