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
        from audiences.studio import contact_segments_section
        from contacts.admin_base import contact_section_install
        from contacts.erasure import forgetter_install
        from contacts.membership import install_membership

        load_segment_modules()
        install_membership(LiveMembership())
        forgetter_install(name="audiences", forget=segment_memberships_forget)
        contact_section_install(name="segments", section=contact_segments_section)
