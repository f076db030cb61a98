"""Studio for contacts, events, suppressions, API keys and the audit log."""

from __future__ import annotations

import json
import logging
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

from contacts.actions import (
    ContactActionError,
    contact_erase_by_operator,
    contact_resubscribe_by_operator,
    contact_unsubscribe_by_operator,
    suppression_add_by_operator,
    suppression_change_by_operator,
    suppression_remove_by_operator,
)
from contacts.addresses import EmailError
from contacts.admin_base import ReadOnlyStudioAdmin, StudioModelAdmin, as_uuid, email_prefix
from contacts.consent import consent_history
from contacts.models import ApiKey, AuditEntry, Contact, Event, Suppression
from contacts.services import IngestError, api_key_create, api_key_revoke, audit_record, origin_normalize

logger = logging.getLogger(__name__)
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
        from journeys.registry import registry

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
        from contacts import studio

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
        from emails.models import EmailLog
        from journeys.models import JourneyRun
        from journeys.registry import registry

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
        from journeys.actions import ActionError, journey_contact_enroll
        from journeys.registry import registry

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


class RedispatchedFilter(admin.SimpleListFilter):
    """Events the reconciler pushed again because nothing had decided them."""

    title = "reconciled"
    parameter_name = "reconciled"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Pushed again by the reconciler")]

    def queryset(self, request: Any, queryset: QuerySet) -> QuerySet:
        return queryset.filter(redispatches__gt=0) if self.value() == "yes" else queryset


@admin.register(Event)
class EventAdmin(ReadOnlyStudioAdmin):
    list_display = ("name", "contact", "source", "dispatch_state", "redispatches", "occurred_at")
    list_filter = ("source", "dispatch_state", RedispatchedFilter)
    list_select_related = ("contact",)
    search_fields = ("name",)
    search_help_text = "Exact event name, or a contact's exact user id."
    readonly_fields = [f.name for f in Event._meta.fields]

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet:
        # Two index lookups, not an OR across a join (which would scan the table).
        contact_id = Contact.objects.filter(user_id=term).values_list("pk", flat=True).first()
        if contact_id is not None:
            return queryset.filter(contact_id=contact_id)
        return queryset.filter(name=term)


@admin.register(Suppression)
class SuppressionAdmin(StudioModelAdmin):
    list_display = ("email", "reason", "note", "created_at")
    list_filter = ("reason",)
    search_fields = ("email",)
    fields = ("email", "reason", "note")

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet:
        return queryset.filter(email_prefix(term))

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        if change:
            suppression_change_by_operator(
                actor=request.user, suppression=obj, reason=obj.reason, note=obj.note
            )
            return
        saved = suppression_add_by_operator(
            actor=request.user, email=obj.email, reason=obj.reason, note=obj.note
        )
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request: HttpRequest, obj: Suppression) -> None:
        suppression_remove_by_operator(actor=request.user, email=obj.email)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple)
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Publishable keys only: one origin a line, e.g. https://app.example.com",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "allowed_origins", "expires_at")

    def clean_allowed_origins(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["allowed_origins"].splitlines() if line.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # The service's rules, as form errors rather than a 500.
        try:
            if ApiKey.Scope.PUBLIC in cleaned.get("scopes", []) or cleaned.get("allowed_origins"):
                for origin in cleaned.get("allowed_origins", []):
                    origin_normalize(origin)
                if cleaned.get("scopes") != [ApiKey.Scope.PUBLIC]:
                    raise ValueError("a publishable key has the public scope alone, and only it has origins")
                if not cleaned.get("allowed_origins"):
                    raise ValueError("a publishable key needs at least one allowed origin")
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(StudioModelAdmin):
    list_display = ("name", "masked", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at")
    actions = ["revoke_selected"]
    readonly_fields = (
        "name",
        "masked",
        "scopes",
        "allowed_origins",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )

    @admin.display(description="key")
    def masked(self, key: ApiKey) -> str:
        return key.masked

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name", "scopes", "allowed_origins", "expires_at") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row explains requests made with the key

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return
        key, secret = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
            allowed_origins=form.cleaned_data.get("allowed_origins", []),
        )
        obj.pk, obj.prefix = key.pk, key.prefix
        obj._state.adding = False
        audit_record(
            actor=request.user,
            action="api_key.create",
            target_type="api_key",
            target_id=str(key.pk),
            detail={"name": key.name, "scopes": key.scopes, "prefix": key.prefix},
        )
        obj._created_secret = secret  # shown once by response_add, never stored or put in a cookie

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None) -> HttpResponse:
        secret = getattr(obj, "_created_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        # In the response body only: a flash message would travel in the (unsigned-readable)
        # messages cookie.
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": obj,
            "secret": secret,
        }
        response = TemplateResponse(request, "studio/api_key_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key)
            audit_record(
                actor=request.user,
                action="api_key.revoke",
                target_type="api_key",
                target_id=str(key.pk),
                detail={"name": key.name, "prefix": key.prefix},
            )
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyStudioAdmin):
    list_display = ("created_at", "actor_label", "action", "target_type", "target_id")
    list_filter = ("action", "target_type")
    list_select_related = ("actor",)
    readonly_fields = ("created_at", "actor", "actor_label", "action", "target_type", "target_id", "detail")
