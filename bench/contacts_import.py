"""Time `manage.py contacts_import` on a generated file, in a database of its own.

    .venv/bin/python bench/contacts_import.py               # 1,000,000 rows
    .venv/bin/python bench/contacts_import.py --rows 100000

Generates a CSV in a temporary directory (a mix of new contacts, unsubscribes, category opt-outs
and a property column), imports it into a fresh `hogsend_bench_import` database, imports it again
(the idempotent re-run: nothing changes), exports it, and prints each rate.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "email", "subscribed", "category_opt_outs", "plan", "properties"])
        for i in range(rows):
            writer.writerow(
                [
                    f"user-{i:07d}",
                    f"user{i}@example.com",
                    "false" if i % 50 == 0 else "true",
                    "product-updates" if i % 7 == 0 else "",
                    ("free", "pro", "team")[i % 3],
                    json.dumps({"seats": i % 20}),
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default=os.environ.get("BENCH_DB", "hogsend_bench_import"))
    args = parser.parse_args()

    server = f"postgres://hogsend@127.0.0.1:{os.environ.get('HOGSEND_PG_PORT', '54329')}"
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}"')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    os.environ["DATABASE_URL"] = f"{server}/{args.db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hogsend.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        started = time.monotonic()
        generate(path, args.rows)
        size = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size:.0f} MB) in {time.monotonic() - started:.1f} s")
        print("first import:")
        call_command("contacts_import", str(path))
        print("the same file again (idempotent re-run):")
        call_command("contacts_import", str(path))
        started = time.monotonic()
        out = io.StringIO()
        call_command("contacts_export", "--output", str(Path(tmp) / "export.csv"), stdout=out)
        seconds = time.monotonic() - started
        print(f"export: {args.rows:,} rows in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
