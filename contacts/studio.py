"""Studio pages for moving contacts in bulk: an import upload with a live progress bar, and export."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from contacts.exports import contact_data_export, contacts_export
from contacts.import_jobs import contacts_import_start, import_progress
from contacts.imports import ImportFileError
from contacts.models import Contact

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV or JSON-lines file",
        help_text="Columns: user_id (required), email, subscribed, unsubscribed_at, category_opt_outs, "
        "category_opt_ins, properties (a JSON object); any other column becomes a property.",
    )


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def contacts_import_view(request: HttpRequest) -> HttpResponse:
    _require(request, "contacts.change_contact")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            import_id = contacts_import_start(actor=request.user, upload=upload, filename=upload.name)
        except ImportFileError as error:
            messages.error(request, str(error))
        else:
            return HttpResponseRedirect(reverse("admin:contacts_contact_import_status", args=[import_id]))
    return render(
        request,
        "studio/contacts_import.html",
        {**admin.site.each_context(request), "title": "Import contacts", "form": form},
    )


def contacts_import_status_view(request: HttpRequest, import_id: str) -> HttpResponse:
    """The import's page: a progress bar the page refreshes from the JSON below, then the report."""
    _require(request, "contacts.change_contact")
    state = import_progress(import_id=import_id)
    if state is None:
        messages.error(request, "No such import (or its report has expired).")
        return HttpResponseRedirect(reverse("admin:contacts_contact_import"))
    if request.GET.get("format") == "json":
        return JsonResponse(state)
    return render(
        request,
        "studio/contacts_import_status.html",
        {
            **admin.site.each_context(request),
            "title": f"Import of {state.get('filename', '')}",
            "state": state,
            "status_url": reverse("admin:contacts_contact_import_status", args=[import_id]) + "?format=json",
        },
    )


@require_GET
def contacts_export_view(request: HttpRequest) -> HttpResponse:
    _require(request, "contacts.view_contact")
    fmt = request.GET.get("format", "csv")
    if fmt not in CONTENT_TYPES:
        return HttpResponse("format must be csv or jsonl", status=400, content_type="text/plain")
    response = StreamingHttpResponse(contacts_export(fmt=fmt), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="contacts.{fmt}"'
    return response


@require_GET
def contact_data_export_view(request: HttpRequest, contact_id: str) -> HttpResponse:
    """One contact's data with its consent ledger, for an access request (a JSON download)."""
    _require(request, "contacts.view_contact")
    contact = get_object_or_404(Contact, pk=contact_id)
    response = JsonResponse(contact_data_export(contact=contact), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
    response["Cache-Control"] = "no-store"
    return response
