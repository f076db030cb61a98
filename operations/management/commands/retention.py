"""`manage.py retention [--dry-run]`: delete what is past RETENTION_*_DAYS, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from operations.retention import retention_plan, retention_run


class Command(BaseCommand):
    help = "Delete events, step logs and email logs past their retention (RETENTION_*_DAYS)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print what would go; delete nothing")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="rows per delete (RETENTION_BATCH_SIZE)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"]:
            for _, report in retention_plan():
                if report.cutoff is None:
                    self.stdout.write(f"{report.name}: kept forever (retention 0 days)")
                else:
                    self.stdout.write(
                        f"{report.name}: would delete {report.matched} "
                        f"(older than {report.days} days, before {report.cutoff:%Y-%m-%d %H:%M} UTC)"
                    )
            return
        bars: dict[str, tqdm] = {}

        def progress(kind: str, done: int, total: int) -> None:
            bar = bars.get(kind)
            if bar is None:
                bar = bars[kind] = tqdm(total=total, desc=kind, unit="row", file=self.stderr._out)
            bar.update(done - bar.n)

        reports = retention_run(batch_size=options["batch_size"], progress=progress)
        for bar in bars.values():
            bar.close()
        for report in reports:
            if report.cutoff is None:
                self.stdout.write(f"{report.name}: kept forever (retention 0 days)")
            else:
                self.stdout.write(f"{report.name}: deleted {report.deleted} (older than {report.days} days)")
