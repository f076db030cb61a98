from __future__ import annotations

from django.apps import AppConfig


class BroadcastsConfig(AppConfig):
    name = "broadcasts"
    verbose_name = "Broadcasts"

    def ready(self) -> None:
        from broadcasts import templates  # noqa: F401  (registers the shipped broadcast template)
