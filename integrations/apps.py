from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lifecycle events the lower apps announce through the seam become deliveries here.
        # An erased contact's pending deliveries go, so nothing of it leaves for a destination.
        from contacts.erasure import forgetter_install
        from contacts.lifecycle import install_lifecycle
        from integrations.lifecycle import Announcer
        from integrations.outbound import deliveries_forget

        install_lifecycle(Announcer())
        from audiences.membership import membership_listener_install
        from integrations.lifecycle import segment_changes_emit

        membership_listener_install(name="integrations", listener=segment_changes_emit)
        forgetter_install(name="integrations", forget=deliveries_forget)
        post_migrate.connect(_destinations_sync, sender=self, dispatch_uid="integrations.destinations_sync")


def _destinations_sync(**kwargs: Any) -> None:
    """Destinations kept in settings exist once the schema does (`manage.py migrate`, bin/run)."""
    from django.conf import settings

    if settings.INTEGRATIONS_DESTINATIONS:
        from integrations.outbound import destinations_sync_from_settings

        destinations_sync_from_settings()
