"""The pieces every Studio admin shares: a paginator that never counts a huge table, indexed
searches, read-only records. At the ground so every app's admin can use them; the Studio site
itself (its index and custom views) is wiring and lives in `hogsend.admin`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property


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


# Sections the apps above add to a contact's Studio page (its segments, ...): each renders the
# HTML of one contact's section; installed at start-up, shown in the order installed.
ContactSection = Callable[..., str]  # section(*, contact: Contact, request: HttpRequest) -> safe HTML
_contact_sections: dict[str, ContactSection] = {}


def contact_section_install(*, name: str, section: ContactSection) -> None:
    _contact_sections[name] = section


def contact_sections(*, contact: Any, request: Any) -> list[str]:
    return [section(contact=contact, request=request) for section in _contact_sections.values()]
