from __future__ import annotations

from django.apps import AppConfig


class AudiencesConfig(AppConfig):
    name = "audiences"
    verbose_name = "Audiences"

    def ready(self) -> None:
        # Ingest keeps membership live through the seam it calls; an erasure leaves every segment.
        from audiences.membership import LiveMembership
        from audiences.segments import load_segment_modules
        from audiences.services import segment_memberships_forget
        from contacts.erasure import forgetter_install
        from contacts.membership import install_membership

        load_segment_modules()
        install_membership(LiveMembership())
        forgetter_install(name="audiences", forget=segment_memberships_forget)
