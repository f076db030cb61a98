"""`manage.py doctor`: one line per check; exits 1 when anything is failing."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from operations.checks import Status, checks_run, overall


class Command(BaseCommand):
    help = "Check every part of this deployment and say what to fix (non-zero exit when anything fails)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print the checks as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        results = checks_run()
        if options["json"]:
            self.stdout.write(json.dumps([r.as_dict() for r in results], indent=2, default=str))
        else:
            style = {
                Status.OK: self.style.SUCCESS,
                Status.DEGRADED: self.style.WARNING,
                Status.FAILING: self.style.ERROR,
            }
            width = max(len(r.name) for r in results)
            for r in results:
                line = f"{style[r.status](f'{r.status:<8}')} {r.name:<{width}}  {r.summary}"
                if r.action and r.status != Status.OK:
                    line += f" — {r.action}"
                self.stdout.write(line)
        verdict = overall(results)
        if verdict == Status.FAILING:
            failing = ", ".join(r.name for r in results if r.status == Status.FAILING)
            raise CommandError(f"failing: {failing}")
