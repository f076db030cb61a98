"""Studio for integrations: destinations (test send, pause), deliveries and their dead letters
(replay one, a selection, or all), and the webhook sources with their recent deliveries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from contacts.admin_base import ReadOnlyStudioAdmin, StudioModelAdmin
from integrations.actions import deliveries_replay, destination_test_send
from integrations.catalog import CATALOG
from integrations.models import Delivery, Destination, WebhookDelivery
from integrations.selectors import sources_overview


class DestinationForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500, assume_scheme="https", help_text=Destination._meta.get_field("url").help_text
    )

    class Meta:
        model = Destination
        fields = ["name", "kind", "url", "secret", "event_types", "paused"]

    def clean_event_types(self) -> list[str]:
        wanted = [t.strip() for t in self.cleaned_data.get("event_types") or [] if t.strip()]
        families = {t.split(".")[0] for t in CATALOG}
        unknown = [t for t in wanted if t not in CATALOG and not (t.endswith(".*") and t[:-2] in families)]
        if unknown:
            raise forms.ValidationError(
                f"unknown event types: {', '.join(unknown)}; see the catalog (e.g. email.bounced, journey.*)"
            )
        return wanted


@admin.register(Destination)
class DestinationAdmin(StudioModelAdmin):
    form = DestinationForm
    list_display = ("name", "kind", "url", "types", "paused", "pending", "dead")
    list_filter = ("kind", "paused")
    search_fields = ("name",)
    actions = ["send_test", "pause", "resume"]
    readonly_fields = ("from_settings", "created_at", "updated_at")
    change_form_template = "studio/destination_change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                pending_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
                dead_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DEAD)),
            )
        )

    @admin.display(description="event types")
    def types(self, obj: Destination) -> str:
        return ", ".join(obj.event_types) or "all"

    @admin.display(description="pending", ordering="pending_count")
    def pending(self, obj: Destination) -> int:
        return obj.pending_count

    @admin.display(description="dead letters", ordering="dead_count")
    def dead(self, obj: Destination) -> Any:
        if not obj.dead_count:
            return 0
        url = reverse("admin:integrations_delivery_changelist")
        return format_html(
            '<a href="{}?status__exact=dead&destination__id__exact={}">{}</a>', url, obj.pk, obj.dead_count
        )

    def get_urls(self) -> list[Any]:
        test = path(
            "<int:destination_id>/test/",
            self.admin_site.admin_view(self.test_view),
            name="integrations_destination_test",
        )
        return [test, *super().get_urls()]

    def test_view(self, request: HttpRequest, destination_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        destination = get_object_or_404(Destination, pk=destination_id)
        if not self.has_change_permission(request, destination):
            return HttpResponseRedirect(reverse("admin:index"))
        self._report_test(request, destination)
        return HttpResponseRedirect(reverse("admin:integrations_destination_change", args=[destination.pk]))

    def _report_test(self, request: HttpRequest, destination: Destination) -> None:
        outcome = destination_test_send(destination=destination, actor=request.user)
        if outcome.ok:
            messages.success(
                request, f"{destination.name}: the test event was accepted (HTTP {outcome.status_code})."
            )
        else:
            messages.error(request, f"{destination.name}: the test event failed: {outcome.error}")

    @admin.action(description="Send a test event")
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> None:
        for destination in queryset:
            self._report_test(request, destination)

    @admin.action(description="Pause (deliveries wait)")
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        queryset.update(paused=True)

    @admin.action(description="Resume")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        queryset.update(paused=False)


class DeadLetterFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, label) for value, label in Delivery.Status.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyStudioAdmin):
    list_display = (
        "created_at",
        "event_type",
        "destination",
        "status",
        "attempts",
        "next_attempt_at",
        "error",
    )
    list_filter = (DeadLetterFilter, "destination", "event_type")
    list_select_related = ("destination",)
    actions = ["replay"]
    change_list_template = "studio/delivery_change_list.html"
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet | None:
        from contacts.admin_base import as_uuid

        found = as_uuid(term)
        return queryset.filter(Q(pk=found) | Q(event_id=found)) if found else queryset.none()

    @admin.display(description="last error")
    def error(self, obj: Delivery) -> str:
        return (obj.last_error or "")[:120]

    @admin.action(description="Replay the selected dead letters", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = deliveries_replay(delivery_ids=queryset.values_list("pk", flat=True), actor=request.user)
        messages.success(request, f"{count} dead letter(s) queued again.")

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Read-only rows; replaying is for those who may change destinations.
        return request.user.has_perm("integrations.change_destination")

    def get_urls(self) -> list[Any]:
        replay_all = path(
            "replay-all/",
            self.admin_site.admin_view(self.replay_all_view),
            name="integrations_delivery_replay_all",
        )
        return [replay_all, *super().get_urls()]

    def replay_all_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_replay_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        dead = Delivery.objects.filter(status=Delivery.Status.DEAD)
        if request.POST.get("destination"):
            dead = dead.filter(destination_id=request.POST["destination"])
        count = deliveries_replay(delivery_ids=list(dead.values_list("pk", flat=True)), actor=request.user)
        messages.success(request, f"{count} dead letter(s) queued again.")
        return HttpResponseRedirect(reverse("admin:integrations_delivery_changelist") + "?status__exact=dead")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyStudioAdmin):
    list_display = ("received_at", "source_id", "delivery_id", "outcome", "events", "error")
    list_filter = ("source_id", "outcome")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    change_list_template = "studio/webhook_delivery_change_list.html"

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet | None:
        return queryset.filter(delivery_id=term)

    @admin.display(description="events")
    def events(self, obj: WebhookDelivery) -> str:
        return ", ".join(obj.event_names)

    def get_urls(self) -> list[Any]:
        sources = path(
            "sources/",
            self.admin_site.admin_view(self.sources_view),
            name="integrations_webhook_sources",
        )
        return [sources, *super().get_urls()]

    def sources_view(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Webhook sources",
            "sources": sources_overview(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "studio/webhook_sources.html", context)
