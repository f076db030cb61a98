from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadInput(Exception):
    """Input the command cannot run with; the message says what to fix (exit status 2)."""


def moment(text: str, *, option: str, now: datetime) -> datetime:
    """`30d`, `12h`, `90m`, `2w` (that long before now), or an ISO date or date-time (UTC when no
    zone is given)."""
    value = text.strip()
    span = _SPAN.match(value)
    if span:
        return now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)) is not None:
            parsed = datetime(day.year, day.month, day.day)
    except ValueError:
        parsed = None
    if parsed is None:
        raise BadInput(
            f"{option} {text!r} is neither a span such as 30d, 12h, 90m or 2w nor an ISO date such as "
            "2026-01-05 or 2026-01-05T09:00:00Z"
        )
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def load_changed(spec: str, journey_id: str) -> Any:
    """The journey `journey_id` as a module path (`myapp.journeys_v2`) or a .py file defines it."""
    from journeys.definition import Journey, JourneyDefinitionError

    path = Path(spec)
    try:
        if spec.endswith(".py") or path.exists():
            if not path.is_file():
                raise BadInput(f"--against {spec!r}: no such file")
            name = f"hogsend_backtest_against_{uuid.uuid4().hex[:8]}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise BadInput(f"--against {spec!r} cannot be loaded as a Python module")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module  # dataclasses and inspect look the module up by name
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except BadInput:
        raise
    except ModuleNotFoundError as error:
        raise BadInput(
            f"--against {spec!r}: no module {error.name!r} (give a module path or a .py file)"
        ) from None
    except (JourneyDefinitionError, SyntaxError, ImportError) as error:
        raise BadInput(f"--against {spec!r} does not load: {type(error).__name__}: {error}") from None
    listed = list(getattr(module, "JOURNEYS", ()))
    candidates = listed + [v for v in vars(module).values() if isinstance(v, Journey) and v not in listed]
    found = [j for j in candidates if isinstance(j, Journey) and j.id == journey_id]
    if not found:
        defined = sorted({j.id for j in candidates if isinstance(j, Journey)})
        raise BadInput(
            f"--against {spec!r} does not define the journey {journey_id!r}"
            + (f" (it defines {', '.join(defined)})" if defined else " (it defines no journey)")
        )
    return found[0]


class Command(BaseCommand):
    help = (
        "Backtest a journey: replay the recorded events of a period (its trigger, exit and awaited "
        "events, consent changes) through it on the virtual-time harness, in isolation (a schema "
        "of its own in a transaction that is rolled back; nothing is sent), and report what it "
        "would have done. With --against, a changed version runs beside it and the difference is "
        "shown. Exit status 0, or 2 for bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("journey", metavar="JOURNEY", help="the journey's id")
        parser.add_argument(
            "--since", default="30d", help="start of the period: 30d, 12h, 2w or an ISO date (30d)"
        )
        parser.add_argument(
            "--until", default=None, help="end of the period (now): the same forms as --since"
        )
        parser.add_argument(
            "--against",
            metavar="MODULE_OR_PATH",
            help="a changed version: a module path or a .py file defining a journey with the same id",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--limit-contacts", type=int, default=None, metavar="N", help="replay only the first N contacts"
        )
        parser.add_argument(
            "--render",
            action="store_true",
            help="render every email (slower; a template that would fail shows as failed)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            metavar="N",
            help="processes replaying disjoint shares of the contacts (one per core, when there are enough)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = self._run(options)
        except BadInput as error:
            self.stderr.write(f"journey_backtest: {error}")
            sys.exit(2)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(report.as_text())

    def _run(self, options: dict[str, Any]) -> Any:
        from journeys.backtest import journey_backtest
        from journeys.registry import registry

        journey = registry.get(options["journey"])
        if journey is None:
            known = ", ".join(sorted(j.id for j in registry.all()))
            raise BadInput(f"no journey {options['journey']!r}; known: {known}")
        now = timezone.now()
        since = moment(options["since"], option="--since", now=now)
        until = moment(options["until"], option="--until", now=now) if options["until"] else now
        if since >= until:
            raise BadInput(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
        limit = options["limit_contacts"]
        if limit is not None and limit < 1:
            raise BadInput(f"--limit-contacts must be at least 1; got {limit}")
        if options["workers"] is not None and options["workers"] < 1:
            raise BadInput(f"--workers must be at least 1; got {options['workers']}")
        against = load_changed(options["against"], journey.id) if options["against"] else None
        bar = _Progress(self.stderr, enabled=not options["no_progress"])
        try:
            return journey_backtest(
                journey=journey,
                since=since,
                until=until,
                against=against,
                limit_contacts=limit,
                progress=bar.update,
                on_total=bar.start,
                render=options["render"],
                workers=options["workers"],
            )
        finally:
            bar.close()


class _Progress:
    """A tqdm bar on stderr: events replayed of the total, rate, ETA. The replay moves the clock
    that time.time reads (the harness's virtual time), so the bar reads perf_counter instead."""

    def __init__(self, stream: Any, *, enabled: bool) -> None:
        self.stream, self.enabled, self.bar = stream, enabled, None

    def start(self, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # its monitor thread would read the virtual clock
        self.bar = tqdm(total=total, unit="event", file=self.stream, desc="replaying", mininterval=0.5)
        self.bar._time = time.perf_counter
        self.bar.start_t = self.bar.last_print_t = time.perf_counter()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
