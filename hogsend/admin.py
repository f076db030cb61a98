"""Studio: the Django admin as the operator's console.

The admin site adds a "Studio" section to the index (journeys and email templates are code, not
models, so they are custom views). The pieces every app's Studio admin shares (a paginator that
never counts a huge table, indexed searches) live at the ground, in `contacts.admin_base`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import path, reverse


class StudioAdminSite(admin.AdminSite):
    site_header = "Hogsend Studio"
    site_title = "Hogsend Studio"
    index_title = "Operator's console"

    def get_urls(self) -> list[Any]:
        from audiences.studio import segment_detail_view, segment_export_view, segments_view
        from broadcasts.studio import (
            broadcast_action_view,
            broadcast_create_view,
            broadcast_detail_view,
            broadcasts_view,
        )
        from emails.studio import template_detail_view, templates_view
        from journeys.studio import journey_detail_view, journey_set_enabled_view, journeys_view
        from journeys.studio_readout import journey_readout_view
        from operations.studio import operations_view

        studio = [
            path("studio/journeys/", self.admin_view(journeys_view), name="studio_journeys"),
            path(
                "studio/journeys/<str:journey_id>/",
                self.admin_view(journey_detail_view),
                name="studio_journey",
            ),
            path(
                "studio/journeys/<str:journey_id>/readout/",
                self.admin_view(journey_readout_view),
                name="studio_journey_readout",
            ),
            path(
                "studio/journeys/<str:journey_id>/enabled/",
                self.admin_view(journey_set_enabled_view),
                name="studio_journey_enabled",
            ),
            path("studio/segments/", self.admin_view(segments_view), name="studio_segments"),
            path(
                "studio/segments/<str:segment_id>/",
                self.admin_view(segment_detail_view),
                name="studio_segment",
            ),
            path(
                "studio/segments/<str:segment_id>/export/",
                self.admin_view(segment_export_view),
                name="studio_segment_export",
            ),
            path("studio/broadcasts/", self.admin_view(broadcasts_view), name="studio_broadcasts"),
            path(
                "studio/broadcasts/new/", self.admin_view(broadcast_create_view), name="studio_broadcast_add"
            ),
            path(
                "studio/broadcasts/<uuid:broadcast_id>/",
                self.admin_view(broadcast_detail_view),
                name="studio_broadcast",
            ),
            path(
                "studio/broadcasts/<uuid:broadcast_id>/<str:action>/",
                self.admin_view(broadcast_action_view),
                name="studio_broadcast_action",
            ),
            path("studio/templates/", self.admin_view(templates_view), name="studio_templates"),
            path("studio/operations/", self.admin_view(operations_view), name="studio_operations"),
            path(
                "studio/templates/<path:key>/", self.admin_view(template_detail_view), name="studio_template"
            ),
        ]
        return studio + super().get_urls()

    def get_app_list(self, request: Any, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is None and request.user.is_active and request.user.is_staff:
            can_add_broadcast = request.user.has_perm("broadcasts.add_broadcast")
            apps.insert(
                0,
                {
                    "name": "Studio",
                    "app_label": "studio",
                    "app_url": reverse("admin:studio_journeys"),
                    "has_module_perms": True,
                    "models": [
                        {
                            "name": "Journeys",
                            "object_name": "Journey",
                            "admin_url": reverse("admin:studio_journeys"),
                            "add_url": None,
                            "view_only": True,
                            "perms": {"view": True},
                        },
                        {
                            "name": "Segments",
                            "object_name": "Segment",
                            "admin_url": reverse("admin:studio_segments"),
                            "add_url": None,
                            "view_only": True,
                            "perms": {"view": True},
                        },
                        {
                            "name": "Broadcasts",
                            "object_name": "Broadcast",
                            "admin_url": reverse("admin:studio_broadcasts"),
                            "add_url": reverse("admin:studio_broadcast_add") if can_add_broadcast else None,
                            "view_only": not can_add_broadcast,
                            "perms": {"view": True, "add": can_add_broadcast},
                        },
                        {
                            "name": "Email templates",
                            "object_name": "EmailTemplate",
                            "admin_url": reverse("admin:studio_templates"),
                            "add_url": None,
                            "view_only": True,
                            "perms": {"view": True},
                        },
                        {
                            "name": "Operations",
                            "object_name": "Operations",
                            "admin_url": reverse("admin:studio_operations"),
                            "add_url": None,
                            "view_only": True,
                            "perms": {"view": True},
                        },
                    ],
                },
            )
        return apps


class StudioAdminConfig(AdminConfig):
    default_site = "hogsend.admin.StudioAdminSite"

    def ready(self) -> None:
        super().ready()
        from hogsend import checks  # noqa: F401  (registers the start-up security checks)
