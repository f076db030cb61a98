from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The outbox relay's batches are counted here, through the seam it offers.
        from journeys.runtime.relay import batch_observer_install

        batch_observer_install(_relay_batch_count)


def _relay_batch_count(result: Any) -> None:
    # Imported at the first batch, not at start-up: the metrics module chooses its registry
    # (per process or multiprocess) when it is imported, after the process's setup.
    from operations.metrics import relay_batch_observe

    relay_batch_observe(result)
