"""Studio for email: the email log with a rendered preview, and the template gallery with test sends."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.response import TemplateResponse
from django.urls import reverse

from emails.actions import template_test_send
from emails.models import EmailLog
from emails.registry import UnknownTemplate, all_templates, get_template
from emails.services import EmailError, email_render
from hogsend.admin import StudioModelAdmin, as_uuid


def preview(*, template: str, props: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    """Render for the sandboxed iframe; a template that cannot render says why instead."""
    try:
        rendered = email_render(template=template, props=props, subject=subject)
    except (EmailError, UnknownTemplate) as error:
        return {"error": str(error)}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


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

        return format_html('<span class="studio-pill {}">{}</span>', log.status, log.status)

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
        log = get_object_or_404(EmailLog.objects.select_related("contact", "run"), pk=object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{log.template} → {log.to_email or '(erased)'}",
            "opts": self.opts,
            "log": log,
            "preview": preview(template=log.template, props=log.props, subject=log.subject),
        }
        return TemplateResponse(request, self.change_form_template, context)


# --- the template gallery (templates are code, so these are custom views on the Studio site) ------


class TestSendForm(forms.Form):
    to = forms.EmailField(label="Send a test to")


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def templates_view(request: HttpRequest) -> HttpResponse:
    _require(request, "emails.view_emaillog")
    return render(
        request,
        "studio/templates.html",
        {
            **admin.site.each_context(request),
            "title": "Email templates",
            "templates": all_templates(),
        },
    )


def template_detail_view(request: HttpRequest, key: str) -> HttpResponse:
    _require(request, "emails.view_emaillog")
    try:
        spec = get_template(key)
    except UnknownTemplate:
        raise Http404(f"no template {key!r}") from None
    form = TestSendForm(request.POST or None)
    if request.method == "POST":
        _require(request, "emails.change_emaillog")
        if form.is_valid():
            to = form.cleaned_data["to"]
            log = template_test_send(actor=request.user, template=spec.key, to=to)
            level = messages.SUCCESS if log.status == EmailLog.Status.SENT else messages.WARNING
            messages.add_message(
                request, level, f"Test send to {to}: {log.status} {log.status_reason}".strip()
            )
            return HttpResponseRedirect(reverse("admin:studio_template", args=[spec.key]))
    return render(
        request,
        "studio/template_detail.html",
        {
            **admin.site.each_context(request),
            "title": f"Template {spec.key}",
            "spec": spec,
            "preview": preview(template=spec.key, props=dict(spec.example_props)),
            "form": form,
            "can_send": request.user.has_perm("emails.change_emaillog"),
        },
    )
