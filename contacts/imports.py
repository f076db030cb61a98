"""Contacts into Hogsend in bulk, from CSV or JSON lines (the export is `contacts.exports`).

The import is set-based: rows are parsed and checked in Python, then each chunk is COPYed into a
session temp table and upserted into contacts with one `INSERT ... ON CONFLICT DO UPDATE`, so a
million contacts take minutes, not hours. A re-run of the same file changes nothing. Consent only
ever tightens for a contact who already exists: an import can unsubscribe or opt out, never
resubscribe or opt in (the contact's own choice outranks a spreadsheet).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction

from contacts.import_sql import CREATE_STAGE, KEPT_UNSUBSCRIBED, STAGE, UPSERT

Progress = Callable[[int, int], None]

# Header spellings accepted on import (case-insensitive; the original product's camelCase too).
ALIASES = {
    "user_id": "user_id",
    "userid": "user_id",
    "email": "email",
    "useremail": "email",
    "subscribed": "subscribed",
    "unsubscribed_at": "unsubscribed_at",
    "unsubscribedat": "unsubscribed_at",
    "category_opt_outs": "category_opt_outs",
    "categoryoptouts": "category_opt_outs",
    "category_opt_ins": "category_opt_ins",
    "categoryoptins": "category_opt_ins",
    "properties": "properties",
}
# Columns an export carries that an import has no business setting.
IGNORED = {"id", "created_at", "createdat", "updated_at", "updatedat", "erased_at"}
TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}
DEFAULT_CHUNK = 20_000
KEEP_ERRORS = 1_000


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unknown format, no user id column)."""


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    kept_unsubscribed: int = 0
    seconds: float = 0.0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "kept_unsubscribed": self.kept_unsubscribed,
            "seconds": round(self.seconds, 2),
            "rate": round(self.rate, 1),
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass
class _Row:
    row: int
    user_id: str
    email: str
    properties: dict[str, Any]
    unsubscribe: bool | None
    unsubscribed_at: datetime | None
    opt_outs: list[str]
    opt_ins: list[str]


# --- reading and checking rows ---------------------------------------------------------------------


def file_format(path: Path, declared: str | None = None) -> str:
    if declared:
        if declared not in ("csv", "jsonl"):
            raise ImportFileError(f"format must be csv or jsonl, not {declared!r}")
        return declared
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    with path.open("rb") as handle:
        head = handle.read(512).lstrip()
    return "jsonl" if head.startswith(b"{") else "csv"


def count_records(path: Path, fmt: str) -> int:
    """Lines in the file (minus a CSV header): the progress bar's total, read in one fast pass."""
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - (1 if fmt == "csv" else 0), 0)


def _records(handle: IO[str], fmt: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(row number, raw record) pairs; the row number is the file's line (a CSV header is line 1)."""
    if fmt == "csv":
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            return
        keys = {ALIASES.get(name.strip().lower()) for name in reader.fieldnames if name}
        if "user_id" not in keys:
            raise ImportFileError("the CSV has no user_id column (header row: user_id,email,...)")
        for record in reader:
            yield reader.line_num, record
        return
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            yield number, RowError(number, "line", f"not valid JSON: {error}")
            continue
        if not isinstance(record, dict):
            yield number, RowError(number, "line", "each line must be a JSON object")
            continue
        yield number, record


def _as_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{value!r} is not true or false")


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        items = value
    elif isinstance(value, str) and value.strip().startswith("["):
        items = json.loads(value)
        if not isinstance(items, list):
            raise ValueError("expected a list")
    elif isinstance(value, str):
        items = value.split(";")
    else:
        raise ValueError("expected a list of category ids, or ids separated by ';'")
    return sorted({str(item).strip() for item in items if str(item).strip()})


def _check(number: int, record: dict[str, Any], known_categories: set[str]) -> _Row | list[RowError]:
    errors: list[RowError] = []
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for raw_key, value in record.items():
        if raw_key is None:  # a CSV row with more cells than the header has names
            errors.append(RowError(number, "row", "more cells than the header has columns"))
            continue
        key = ALIASES.get(raw_key.strip().lower())
        if key is not None:
            values[key] = value.strip() if isinstance(value, str) else value
        elif raw_key.strip().lower() not in IGNORED and value not in (None, ""):
            extra[raw_key.strip()] = value

    user_id = values.get("user_id")
    if user_id in (None, ""):
        errors.append(RowError(number, "user_id", "required"))
    elif not isinstance(user_id, str | int) or isinstance(user_id, bool):
        errors.append(RowError(number, "user_id", "must be a string"))
    else:
        user_id = str(user_id).strip()
        if len(user_id) > 255:
            errors.append(RowError(number, "user_id", "at most 255 characters"))

    email = values.get("email") or ""
    if email:
        if not isinstance(email, str) or len(email) > 320:
            errors.append(RowError(number, "email", "not a valid email address"))
        else:
            try:
                validate_email(email)
            except ValidationError:
                errors.append(RowError(number, "email", f"{email!r} is not a valid email address"))

    properties = values.get("properties")
    if properties in (None, ""):
        properties = {}
    elif isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except ValueError as error:
            errors.append(RowError(number, "properties", f"not valid JSON: {error}"))
            properties = {}
    if not isinstance(properties, dict):
        errors.append(RowError(number, "properties", "must be a JSON object"))
        properties = {}
    properties = {**properties, **extra}

    try:
        subscribed = _as_bool(values.get("subscribed"))
    except ValueError as error:
        errors.append(RowError(number, "subscribed", str(error)))
        subscribed = None

    unsubscribed_at = None
    raw_when = values.get("unsubscribed_at")
    if raw_when not in (None, ""):
        try:
            unsubscribed_at = datetime.fromisoformat(str(raw_when))
            if unsubscribed_at.tzinfo is None:
                raise ValueError
        except ValueError:
            errors.append(
                RowError(
                    number, "unsubscribed_at", "must be ISO 8601 with an offset, e.g. 2026-01-05T09:00:00Z"
                )
            )
        else:
            if subscribed is True:
                errors.append(RowError(number, "subscribed", "true contradicts unsubscribed_at"))

    lists: dict[str, list[str]] = {}
    for name in ("category_opt_outs", "category_opt_ins"):
        try:
            lists[name] = _as_list(values.get(name))
        except ValueError as error:
            errors.append(RowError(number, name, str(error)))
            lists[name] = []
        unknown = [c for c in lists[name] if c not in known_categories]
        if unknown:
            errors.append(
                RowError(
                    number,
                    name,
                    f"unknown categories {', '.join(unknown)}; known: {', '.join(sorted(known_categories))}",
                )
            )
    both = set(lists["category_opt_outs"]) & set(lists["category_opt_ins"])
    if both:
        errors.append(RowError(number, "category_opt_ins", f"{', '.join(sorted(both))} also opted out"))

    if errors:
        return errors
    unsubscribe = (
        None
        if subscribed is None and unsubscribed_at is None
        else unsubscribed_at is not None or not subscribed
    )
    return _Row(
        row=number,
        user_id=user_id,
        email=email,
        properties=properties,
        unsubscribe=unsubscribe,
        unsubscribed_at=unsubscribed_at,
        opt_outs=lists["category_opt_outs"],
        opt_ins=lists["category_opt_ins"],
    )


# --- writing chunks (the statements are in contacts.import_sql) -------------------------------------


def _write_chunk(rows: list[_Row], report: ImportReport, *, filename: str = "") -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CREATE_STAGE)
        columns = "row_no, user_id, email, properties, unsubscribe, unsubscribed_at, opt_outs, opt_ins"
        with cursor.cursor.copy(f"COPY {STAGE} ({columns}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (
                        r.row,
                        r.user_id,
                        r.email,
                        json.dumps(r.properties, separators=(",", ":"), default=str),
                        r.unsubscribe,
                        r.unsubscribed_at,
                        r.opt_outs,
                        r.opt_ins,
                    )
                )
        cursor.execute(KEPT_UNSUBSCRIBED)
        report.kept_unsubscribed += cursor.fetchone()[0]
        cursor.execute(UPSERT, [filename])
        outcomes = [inserted for (inserted,) in cursor.fetchall()]
    distinct = len({r.user_id for r in rows})
    created = sum(outcomes)
    report.created += created
    report.updated += len(outcomes) - created
    report.unchanged += distinct - len(outcomes)


def contacts_import(
    *,
    path: Path,
    fmt: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    keep_errors: int = KEEP_ERRORS,
) -> ImportReport:
    """Import contacts from a CSV or JSON-lines file; returns what happened, row by row for errors.

    1. Count the file's lines (the progress total) in one fast pass.
    2. Read and check each row; a bad row is reported (row number, field, message) and skipped,
       and never stops the rows around it.
    3. Every `chunk_size` good rows: COPY them into a temp table and upsert them in one statement,
       one transaction per chunk (a crash keeps the chunks already written; a re-run redoes the
       rest and leaves the done ones alone).
    """
    from contacts.categories import all_categories

    fmt = file_format(path, fmt)
    known = {c.id for c in all_categories()}
    total = count_records(path, fmt)
    report = ImportReport()
    started = time.monotonic()
    pending: list[_Row] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, record in _records(handle, fmt):
                report.rows += 1
                checked = [record] if isinstance(record, RowError) else _check(number, record, known)
                if isinstance(checked, list):
                    report.rejected += 1
                    room = keep_errors - len(report.errors)
                    if room > 0:
                        report.errors.extend(checked[:room])
                else:
                    pending.append(checked)
                if len(pending) >= chunk_size:
                    _write_chunk(pending, report, filename=path.name)
                    pending = []
                    if progress:
                        progress(report.rows, total)
    except (UnicodeDecodeError, csv.Error) as error:
        done = report.created + report.updated + report.unchanged
        raise ImportFileError(
            f"unreadable after row {report.rows} ({error}); save the file as UTF-8 text. "
            f"{done} rows before it were imported; re-running the fixed file is safe"
        ) from None
    if pending:
        _write_chunk(pending, report, filename=path.name)
    report.seconds = time.monotonic() - started
    if progress:
        progress(report.rows, max(total, report.rows))
    return report
