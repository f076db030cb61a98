"""Studio: the Django admin as the operator's console.

The admin site adds a "Studio" section to the index (journeys and email templates are code, not
models, so they are custom views) and the shared pieces every Studio admin uses: a paginator that
never counts a huge table, and a guarded call into the engine.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)


class StudioAdminSite(admin.AdminSite):
    site_header = "Hogsend Studio"
    site_title = "Hogsend Studio"
    index_title = "Operator's console"

    def get_urls(self) -> list[Any]:
        from emails.studio import template_detail_view, templates_view
        from journeys.studio import journey_detail_view, journey_set_enabled_view, journeys_view
        from operations.studio import operations_view

        studio = [
            path("studio/journeys/", self.admin_view(journeys_view), name="studio_journeys"),
            path(
                "studio/journeys/<str:journey_id>/",
                self.admin_view(journey_detail_view),
                name="studio_journey",
            ),
            path(
                "studio/journeys/<str:journey_id>/enabled/",
                self.admin_view(journey_set_enabled_view),
                name="studio_journey_enabled",
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


class EstimatedCountPaginator(Paginator):
    """Counts cheaply on huge tables (the healthchecks habit).

    Unfiltered: beyond `ESTIMATE_ABOVE` rows, trust PostgreSQL's planner estimate (pg_class.reltuples)
    instead of a sequential count. Filtered: count at most `COUNT_CAP` matches, so a broad filter on a
    million rows costs a bounded scan; the last reachable page is then the cap's.
    """

    ESTIMATE_ABOVE = 10_000
    COUNT_CAP = 100_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return len(queryset)
        if not query.where:
            estimate = table_estimate(queryset.model._meta.db_table)
            if estimate > self.ESTIMATE_ABOVE:
                return estimate
        return queryset.order_by()[: self.COUNT_CAP].count()


def table_estimate(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else 0


def as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


def email_prefix(term: str) -> Q:
    """Addresses starting with the term as typed or lowercased (both use the email index)."""
    return Q(email__startswith=term) | Q(email__startswith=term.lower())


class StudioModelAdmin(admin.ModelAdmin):
    """Defaults for every Studio list: cheap counts, no full-count second query, and searches
    that are index lookups (a subclass says which in `indexed_search`), never an icontains scan."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet | None:
        """The rows matching a non-empty, stripped search term; None keeps Django's search."""
        return None

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        found = self.indexed_search(queryset, term)
        if found is None:
            return super().get_search_results(request, queryset, search_term)
        return found, False


class ReadOnlyStudioAdmin(StudioModelAdmin):
    """A record operators read but never write by hand (events, skips, the audit log)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def engine_call(function: str, **kwargs: Any) -> tuple[bool, str]:
    """Call `journeys.runtime.engine.<function>` if it exists; never let the engine break a page.

    Returns (ok, why-not). The database change that prompted the call has already happened, so an
    unreachable engine is logged and reported, not raised.
    """
    try:
        module = importlib.import_module("journeys.runtime.engine")
    except ImportError as error:
        logger.warning("engine module unavailable for %s: %s", function, error)
        return False, f"the engine module is not available ({error})"
    target = getattr(module, function, None)
    if target is None:
        logger.warning("journeys.runtime.engine has no %s", function)
        return False, f"journeys.runtime.engine has no {function}()"
    try:
        target(**kwargs)
    except Exception as error:
        logger.warning("engine %s failed: %s", function, error)
        return False, f"the engine did not answer: {error}"
    return True, ""
