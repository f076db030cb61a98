from __future__ import annotations

from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emails"
    verbose_name = "Email"

    def ready(self) -> None:
        # Connects the anymail tracking signal (bounces, complaints, deliveries) to the email log.
        from emails import webhooks  # noqa: F401
