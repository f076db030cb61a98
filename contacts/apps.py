from __future__ import annotations

from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    verbose_name = "Contacts & events"

    def ready(self) -> None:
        # Registers the Studio import's Celery task, which lives with its job.
        from contacts import import_jobs  # noqa: F401
