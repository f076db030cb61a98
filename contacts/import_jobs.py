"""Contacts imports started from the Studio: a Celery job that reports its progress where the page polls."""

from __future__ import annotations

import csv
import shutil
import uuid
from pathlib import Path
from typing import IO, Any

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

from contacts.imports import ImportFileError, ImportReport, contacts_import

PROGRESS_TTL = 7 * 24 * 3600
STUDIO_ERRORS = 500


def _progress_key(import_id: str) -> str:
    return f"contacts-import:{import_id}"


def import_progress(*, import_id: str) -> dict[str, Any] | None:
    """What the Studio shows while an import runs: state, rows done of the total, then the report."""
    return cache.get(_progress_key(import_id))


def _progress_save(import_id: str, **state: Any) -> None:
    cache.set(_progress_key(import_id), state, PROGRESS_TTL)


def import_dir() -> Path:
    """Where uploads wait for the Celery worker; web and worker must share it."""
    from django.conf import settings

    directory = Path(getattr(settings, "HOGSEND_IMPORT_DIR", settings.BASE_DIR / ".run" / "imports"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def contacts_import_start(*, actor: Any, upload: IO[bytes], filename: str) -> str:
    """Keep an uploaded file for the worker, audit the import, and queue it after commit.
    Returns the import id the Studio polls."""
    from contacts.services import audit_record

    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise ImportFileError("upload a .csv or .jsonl file")
    import_id = uuid.uuid4().hex
    path = import_dir() / f"{import_id}{suffix}"
    with path.open("wb") as out:
        shutil.copyfileobj(upload, out, 1 << 20)
    _progress_save(import_id, state="queued", done=0, total=0, filename=filename)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="contacts.import",
            target_type="contact_import",
            target_id=import_id,
            detail={"filename": filename[:200], "bytes": path.stat().st_size},
        )
        transaction.on_commit(lambda: _enqueue(import_id, str(path)))
    return import_id


def _enqueue(import_id: str, path: str) -> None:
    contacts_import_file.delay(import_id, path)


def contacts_import_run(*, import_id: str, path: str) -> ImportReport | None:
    """The worker's side: import the kept file, writing progress as each chunk lands, then the report."""
    file = Path(path)
    state = import_progress(import_id=import_id) or {}
    filename = state.get("filename", file.name)

    def progress(done: int, total: int) -> None:
        _progress_save(import_id, state="running", done=done, total=total, filename=filename)

    try:
        report = contacts_import(path=file, progress=progress, keep_errors=STUDIO_ERRORS)
    except (ImportFileError, UnicodeDecodeError, csv.Error) as error:
        _progress_save(import_id, state="failed", done=0, total=0, filename=filename, error=str(error))
        return None
    except Exception as error:  # the Studio must not show "running" forever; Celery logs the rest
        _progress_save(import_id, state="failed", done=0, total=0, filename=filename, error=repr(error))
        raise
    finally:
        file.unlink(missing_ok=True)
    _progress_save(
        import_id,
        state="done",
        done=report.rows,
        total=report.rows,
        filename=filename,
        report=report.as_dict(),
    )
    return report


# The Celery task lives with its job (registered at start-up by `contacts.apps`).
@shared_task(name="contacts.import_file", ignore_result=True, acks_late=True)
def contacts_import_file(import_id: str, path: str) -> None:
    """A contacts import started from the Studio; its progress and report go where the page polls."""
    contacts_import_run(import_id=import_id, path=path)
