from __future__ import annotations

from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The outbox relay's batches are counted here, through the seam it offers.
        from journeys.runtime.relay import batch_observer_install
        from operations.metrics import relay_batch_observe

        batch_observer_install(relay_batch_observe)
