"""The Studio's template gallery: templates are code, so these are custom views on the Studio site.

Kept apart from emails/admin.py so the Studio site (hogsend/admin.py) can mount them without
importing the model admins, which import the Studio site.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from contacts.addresses import EmailError
from emails.actions import template_test_send
from emails.models import EmailLog
from emails.registry import UnknownTemplate, all_templates, get_template
from emails.render import email_render


def preview(*, template: str, props: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    """Render for the sandboxed iframe; a template that cannot render says why instead."""
    try:
        rendered = email_render(template=template, props=props, subject=subject)
    except (EmailError, UnknownTemplate) as error:
        return {"error": str(error)}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


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
