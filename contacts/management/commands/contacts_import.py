"""`manage.py contacts_import FILE`: bulk-import contacts from CSV or JSON lines, with a progress bar."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from contacts.imports import DEFAULT_CHUNK, ImportFileError, contacts_import

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV or JSON-lines file (columns: user_id, email, subscribed, "
        "unsubscribed_at, category_opt_outs, category_opt_ins, properties, and any other column as a "
        "property). Re-running a file changes nothing; consent is never loosened for an existing contact."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file name")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK)
        parser.add_argument("--report", type=Path, help="write every rejected row (row,field,message) here")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        bar = tqdm(
            total=0, unit=" rows", unit_scale=True, disable=options["no_progress"], file=self.stderr._out
        )

        def progress(done: int, total: int) -> None:
            bar.total = max(total, done)
            bar.update(done - bar.n)

        try:
            report = contacts_import(
                path=path,
                fmt=options["format"],
                chunk_size=options["chunk_size"],
                progress=progress,
                keep_errors=10**9 if options["report"] else SHOWN_ERRORS,
            )
        except ImportFileError as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()

        for error in report.errors[:SHOWN_ERRORS]:
            self.stderr.write(f"row {error.row}: {error.field}: {error.message}")
        if report.rejected > SHOWN_ERRORS:
            self.stderr.write(f"... and {report.rejected - SHOWN_ERRORS} more rejected rows")
        if options["report"]:
            with options["report"].open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["row", "field", "message"])
                writer.writerows((e.row, e.field, e.message) for e in report.errors)
        self.stdout.write(
            f"{report.rows:,} rows in {report.seconds:.1f} s ({report.rate:,.0f} rows/s): "
            f"{report.created:,} created, {report.updated:,} updated, {report.unchanged:,} unchanged, "
            f"{report.rejected:,} rejected"
            + (
                f"; {report.kept_unsubscribed:,} stayed unsubscribed though their row said subscribed"
                if report.kept_unsubscribed
                else ""
            )
        )
