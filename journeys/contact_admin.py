"""Studio: a contact's page — its events, runs and emails, and the operator's actions on it.

Registered from the journeys app, not the contacts app: the page shows and starts runs, so it sits
above the apps it draws on (contacts imports no other app).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from contacts import studio
from contacts.actions import (
    ContactActionError,
    contact_erase_by_operator,
    contact_resubscribe_by_operator,
    contact_unsubscribe_by_operator,
    suppression_add_by_operator,
    suppression_remove_by_operator,
)
from contacts.addresses import EmailError
from contacts.admin_base import StudioModelAdmin, as_uuid, contact_sections, email_prefix
from contacts.consent import consent_history
from contacts.ingest import IngestError
from contacts.models import Contact, Suppression
from emails.models import EmailLog
from journeys.actions import ActionError, journey_contact_enroll
from journeys.models import JourneyRun
from journeys.registry import registry

PAGE_ROWS = 50


class EnrollForm(forms.Form):
    journey_id = forms.ChoiceField(label="Journey")
    properties = forms.CharField(
        label="Trigger event properties (JSON object)",
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["journey_id"].choices = [
            (j.id, f"{j.name} — emits {j.trigger.event}") for j in registry.all()
        ]

    def clean_properties(self) -> dict[str, Any]:
        raw = (self.cleaned_data.get("properties") or "").strip() or "{}"
        try:
            value = json.loads(raw)
        except ValueError as error:
            raise forms.ValidationError(f"not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('properties must be a JSON object, e.g. {"plan": "pro"}')
        return value


@admin.register(Contact)
class ContactAdmin(StudioModelAdmin):
    list_display = ("email_or_id", "user_id", "subscribed", "erased_at", "created_at")
    search_fields = ("user_id",)  # shows the box; indexed_search decides the lookups
    search_help_text = "Exact user id, exact contact id, or the start of an email address."
    change_form_template = "studio/contact_detail.html"
    change_list_template = "studio/contacts_changelist.html"

    @admin.display(description="contact", ordering="email")
    def email_or_id(self, contact: Contact) -> str:
        return contact.email or contact.user_id

    @admin.display(description="subscribed", boolean=True)
    def subscribed(self, contact: Contact) -> bool:
        return contact.is_subscribed

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Erase keeps the rows so counts stay right; deleting would cascade through history.
        return False

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet:
        """Exact id, exact user id, or email prefix: each one an index lookup, never a scan."""
        if (pk := as_uuid(term)) is not None:
            return queryset.filter(pk=pk)
        return queryset.filter(Q(user_id=term) | email_prefix(term))

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(studio.contacts_import_view), name="contacts_contact_import"),
            path(
                "import/<str:import_id>/",
                wrap(studio.contacts_import_status_view),
                name="contacts_contact_import_status",
            ),
            path("export/", wrap(studio.contacts_export_view), name="contacts_contact_export"),
            path(
                "<uuid:contact_id>/data-export/",
                wrap(studio.contact_data_export_view),
                name="contacts_contact_data_export",
            ),
            path(
                "<uuid:contact_id>/studio/<str:action>/",
                self.admin_site.admin_view(self.action_view),
                name="contacts_contact_studio_action",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        contact = get_object_or_404(Contact, pk=object_id)
        suppression = (
            Suppression.objects.filter(email__iexact=contact.email).first() if contact.email else None
        )
        context = {
            **self.admin_site.each_context(request),
            "title": str(contact),
            "opts": self.opts,
            "contact": contact,
            "properties": json.dumps(contact.properties, indent=2, sort_keys=True, default=str),
            "suppression": suppression,
            "consent_changes": consent_history(contact=contact, limit=PAGE_ROWS),
            "events": list(contact.events.order_by("-occurred_at")[:PAGE_ROWS]),
            "runs": list(JourneyRun.objects.filter(contact=contact).order_by("-entered_at")[:PAGE_ROWS]),
            "emails": list(EmailLog.objects.filter(contact=contact).order_by("-created_at")[:PAGE_ROWS]),
            "journey_names": {j.id: j.name for j in registry.all()},
            "enroll_form": EnrollForm(),
            "can_change": self.has_change_permission(request, contact),
            "page_rows": PAGE_ROWS,
            "sections": contact_sections(contact=contact, request=request),
        }
        return TemplateResponse(request, self.change_form_template, context)

    # --- operator actions, each audited -----------------------------------------------------------

    def action_view(self, request: HttpRequest, contact_id: uuid.UUID, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        contact = get_object_or_404(Contact, pk=contact_id)
        if not self.has_change_permission(request, contact):
            raise PermissionDenied
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            messages.error(request, f"Unknown action {action!r}.")
        elif contact.erased_at is not None and action != "unsuppress":
            messages.error(request, "This contact was erased; there is nothing left to change.")
        else:
            try:
                handler(request, contact)
            except (ContactActionError, EmailError) as error:
                messages.error(request, str(error))
        return HttpResponseRedirect(reverse("admin:contacts_contact_change", args=[contact.pk]))

    def _do_unsubscribe(self, request: HttpRequest, contact: Contact) -> None:
        contact_unsubscribe_by_operator(actor=request.user, contact=contact)
        messages.success(request, "Unsubscribed: no journey or marketing mail will reach this contact.")

    def _do_resubscribe(self, request: HttpRequest, contact: Contact) -> None:
        contact_resubscribe_by_operator(actor=request.user, contact=contact)
        messages.success(request, "Resubscribed.")

    def _do_suppress(self, request: HttpRequest, contact: Contact) -> None:
        # The same permissions as the Suppression pages: changing a contact is not enough.
        if not request.user.has_perm("contacts.add_suppression"):
            raise PermissionDenied
        if not contact.email:
            messages.error(request, "This contact has no email address to suppress.")
            return
        suppression = suppression_add_by_operator(
            actor=request.user, email=contact.email, note=request.POST.get("note", ""), contact=contact
        )
        messages.success(request, f"{contact.email} is suppressed ({suppression.reason}).")

    def _do_unsuppress(self, request: HttpRequest, contact: Contact) -> None:
        if not request.user.has_perm("contacts.delete_suppression"):
            raise PermissionDenied
        removed = suppression_remove_by_operator(actor=request.user, email=contact.email, contact=contact)
        messages.success(request, f"Lifted {removed} suppression(s).")

    def _do_enroll(self, request: HttpRequest, contact: Contact) -> None:
        form = EnrollForm(request.POST)
        if not form.is_valid():
            messages.error(
                request,
                "Not enrolled: "
                + "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()),
            )
            return
        journey = registry.get(form.cleaned_data["journey_id"])
        assert journey is not None
        try:
            journey_contact_enroll(
                actor=request.user,
                journey_id=journey.id,
                contact=contact,
                properties=form.cleaned_data["properties"],
            )
        except (ActionError, IngestError) as error:
            messages.error(request, f"Not enrolled: {error}")
            return
        messages.success(
            request,
            f"Emitted {journey.trigger.event} for this contact; "
            f"{journey.name} enrolls it unless a guard says no.",
        )

    def _do_erase(self, request: HttpRequest, contact: Contact) -> None:
        if request.POST.get("confirm") != "ERASE":
            messages.error(request, "Not erased: type ERASE to confirm.")
            return
        erased = contact_erase_by_operator(actor=request.user, contact=contact)
        if erased.handoff is not None and erased.handoff.problem:
            messages.warning(
                request,
                f"{len(erased.exited_run_ids)} live run(s) marked exited, but {erased.handoff.problem}.",
            )
        messages.success(request, "Erased: personal data removed; rows kept for aggregate counts.")
