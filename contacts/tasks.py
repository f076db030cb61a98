"""Thin Celery tasks around contact services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="contacts.import_file", ignore_result=True, acks_late=True)
def contacts_import_file(import_id: str, path: str) -> None:
    """A contacts import started from the Studio; its progress and report go where the page polls."""
    from contacts.import_jobs import contacts_import_run

    contacts_import_run(import_id=import_id, path=path)
