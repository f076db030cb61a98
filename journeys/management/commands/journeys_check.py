from __future__ import annotations

import json
import sys
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser

ACTOR = "manage.py journeys_check"


class Command(BaseCommand):
    help = (
        "What a deploy does to parked runs: replay every live run's step log through the journeys as "
        "the code defines them now, report per journey what would break, and lint the journeys. "
        "Exits 1 when runs would break (2 with --strict when the lint finds something)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("journeys", nargs="*", metavar="JOURNEY", help="only these journeys")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-lint", action="store_true", help="skip the journey lint")
        parser.add_argument("--strict", action="store_true", help="exit 2 on lint findings too")
        parser.add_argument(
            "--map-label",
            nargs=3,
            action="append",
            default=[],
            metavar=("JOURNEY", "OLD", "NEW"),
            help="first give live runs at label OLD the label NEW (a wait renamed in place)",
        )
        parser.add_argument(
            "--end-broken",
            metavar="REASON",
            help="end every run that would break: exited with REASON, cancelled in the engine",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from journeys.actions import ActionError
        from journeys.deploy_actions import deploy_label_map, deploy_runs_end
        from journeys.deploy_check import journeys_check
        from journeys.registry import registry

        wanted = options["journeys"] or None
        unknown = [j for j in wanted or [] if registry.get(j) is None]
        if unknown:
            known = ", ".join(j.id for j in registry.all())
            raise CommandError(f"no journey {', '.join(unknown)}; known: {known}")
        notes: list[str] = []
        try:
            for journey_id, old, new in options["map_label"]:
                moved = deploy_label_map(actor=ACTOR, journey_id=journey_id, old=old, new=new)
                notes.append(f"mapped {moved} runs of {journey_id} from {old!r} to {new!r}")
            report = journeys_check(journey_ids=wanted, lint=not options["no_lint"])
            if options["end_broken"] is not None and report.breaking:
                ended = deploy_runs_end(
                    actor=ACTOR,
                    run_ids=[UUID(v.run_id) for v in report.breaking],
                    reason=options["end_broken"],
                )
                notes.append(f"ended {len(ended.ended)} runs that would break ({options['end_broken']})")
                if ended.handoff is not None and ended.handoff.problem:
                    notes.append(f"the engine was not told: {ended.handoff.problem}")
                report = journeys_check(journey_ids=wanted, lint=not options["no_lint"])
        except ActionError as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps({**report.as_dict(), "actions": notes}, indent=2))
        else:
            self.stdout.write("\n".join([*notes, report.as_text()]))
        if report.breaking:
            sys.exit(1)
        if options["strict"] and any(j.lint for j in report.journeys):
            sys.exit(2)
