"""Studio for email: the email log with a rendered preview, and the template gallery with test sends."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from contacts.admin_base import StudioModelAdmin, as_uuid
from emails.models import EmailLog, SentMessage
from emails.policy import held_until_text
from emails.registry import all_templates
from emails.studio import preview
from emails.tracking import click_url, open_pixel_url


class TemplateFilter(admin.SimpleListFilter):
    title = "template"
    parameter_name = "template"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t.key, t.key) for t in all_templates()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(template=self.value()) if self.value() else queryset


@admin.register(EmailLog)
class EmailLogAdmin(StudioModelAdmin):
    list_display = ("to_email", "template", "status_pill", "opened", "clicked", "contact", "created_at")
    list_filter = ("status", TemplateFilter, "category")
    list_select_related = ("contact",)
    search_fields = ("to_email",)
    search_help_text = "The start of a recipient address, or an exact email id."
    change_form_template = "studio/email_detail.html"

    @admin.display(description="status", ordering="status")
    def status_pill(self, log: EmailLog) -> str:
        from django.utils.html import format_html

        pill = format_html('<span class="studio-pill {}">{}</span>', log.status, log.status)
        if log.status == EmailLog.Status.HELD:
            return format_html("{} {}", pill, held_until_text(log).removeprefix("held "))
        return pill

    @admin.display(description="opened", boolean=True)
    def opened(self, log: EmailLog) -> bool:
        return log.opened_at is not None

    @admin.display(description="clicked", boolean=True)
    def clicked(self, log: EmailLog) -> bool:
        return log.clicked_at is not None

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet:
        if (pk := as_uuid(term)) is not None:
            return queryset.filter(pk=pk)
        return queryset.filter(Q(to_email__startswith=term) | Q(to_email__startswith=term.lower()))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        log = get_object_or_404(
            EmailLog.objects.select_related("contact", "run", "sent_message"), pk=object_id
        )
        try:
            sent = log.sent_message
        except SentMessage.DoesNotExist:
            sent = None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{log.template} → {log.to_email or _no_address(log)}",
            "opts": self.opts,
            "log": log,
            "held_until": held_until_text(log) if log.status == EmailLog.Status.HELD else "",
            "sent": sent,
            # The tracked URLs in the message, as the recipient's client saw them, and where each leads.
            "tracked_links": [(click_url(log.pk, i), url) for i, url in enumerate(log.links)] if sent else [],
            "open_pixel": pixel if sent and (pixel := open_pixel_url(log.pk)) in sent.html else "",
            "sent_headers": sorted(sent.headers.items()) if sent else [],
            "unsubscribe_link": (sent.headers.get("List-Unsubscribe", "").strip("<>") if sent else ""),
            # Only an email never handed to a provider is re-rendered, from its stored props.
            "preview": None if sent else preview(template=log.template, props=log.props, subject=log.subject),
        }
        return TemplateResponse(request, self.change_form_template, context)


def _no_address(log: EmailLog) -> str:
    return "(no address)" if log.status == EmailLog.Status.SKIPPED else "(erased)"
