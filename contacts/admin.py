"""Studio for contacts, events, suppressions, API keys and the audit log."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from contacts.actions import (
    suppression_add_by_operator,
    suppression_change_by_operator,
    suppression_remove_by_operator,
)
from contacts.admin_base import ReadOnlyStudioAdmin, StudioModelAdmin, email_prefix
from contacts.models import ApiKey, AuditEntry, Contact, Event, Suppression
from contacts.services import api_key_create, api_key_revoke, audit_record, origin_normalize

logger = logging.getLogger(__name__)
PAGE_ROWS = 50


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
