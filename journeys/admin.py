"""Studio for runs: a filterable list, a run's timeline from its step log, cancel and retry."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Min, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from contacts.admin_base import ReadOnlyStudioAdmin, StudioModelAdmin, as_uuid
from journeys import contact_admin  # noqa: F401  (registers the contact's Studio page)
from journeys.actions import ActionError, Handoff, journey_run_cancel, journey_run_retry
from journeys.digests import run_digests
from journeys.models import EnrollmentSkip, JourneyRun, RunStep
from journeys.registry import registry


class JourneyFilter(admin.SimpleListFilter):
    title = "journey"
    parameter_name = "journey_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(j.id, j.name) for j in registry.all()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(journey_id=self.value()) if self.value() else queryset


class CurrentNodeFilter(admin.SimpleListFilter):
    """Nodes of the chosen journey (an index-only scan on run_journey_node_idx)."""

    title = "current node"
    parameter_name = "current_node"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        journey_id = request.GET.get("journey_id")
        if not journey_id:
            return []
        nodes = (
            JourneyRun.objects.filter(journey_id=journey_id)
            .order_by("current_node")
            .values_list("current_node", flat=True)
            .distinct()
        )
        return [(node, node or "(none yet)") for node in nodes]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        return queryset.filter(current_node=self.value())

    def has_output(self) -> bool:
        return True


class VersionFilter(admin.SimpleListFilter):
    """The journey's version each run enrolled under, for the chosen journey (newest first)."""

    title = "version"
    parameter_name = "version"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        journey_id = request.GET.get("journey_id")
        if not journey_id:
            return []
        rows = (
            JourneyRun.objects.filter(journey_id=journey_id)
            .exclude(version="")
            .values("version")
            .annotate(first=Min("entered_at"))
            .order_by("-first")
        )
        return [(row["version"], row["version"]) for row in rows[:20]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(version=value) if value else queryset


class WaitingUntilFilter(admin.SimpleListFilter):
    title = "waiting until"
    parameter_name = "waiting_until"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("overdue", "Overdue (deadline passed)"),
            ("1h", "Within the next hour"),
            ("24h", "Within 24 hours"),
            ("7d", "Within 7 days"),
            ("later", "Later than 7 days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        value = self.value()
        waiting = queryset.filter(status=JourneyRun.Status.WAITING)
        if value == "overdue":
            return waiting.filter(waiting_until__lt=now)
        spans = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
        if value in spans:
            return waiting.filter(waiting_until__gte=now, waiting_until__lte=now + spans[value])
        if value == "later":
            return waiting.filter(waiting_until__gt=now + timedelta(days=7))
        return queryset


def step_view(step: RunStep) -> dict[str, Any]:
    """One timeline entry: what happened at this position, in an operator's words."""
    result = step.result or {}
    entry: dict[str, Any] = {
        "seq": step.seq,
        "kind": step.kind,
        "label": step.label,
        "at": step.recorded_at,
        "result": result,
    }
    if step.kind == RunStep.Kind.SLEEP:
        entry["deadline"] = parse_datetime(result.get("until") or "")
        resumed = parse_datetime(result.get("resumed_at") or "")
        entry["outcome"] = f"woke at {resumed:%Y-%m-%d %H:%M}" if resumed else "sleeping"
    elif step.kind == RunStep.Kind.WAIT:
        entry["deadline"] = parse_datetime(result.get("until") or "")
        if "timed_out" not in result:
            entry["outcome"] = "waiting"
        elif result["timed_out"]:
            entry["outcome"] = "timed out"
        else:
            entry["outcome"] = "event arrived" + (
                " (found by lookback)" if not result.get("durable", True) else ""
            )
            entry["event_id"] = result.get("event_id")
    elif step.kind == RunStep.Kind.SEND:
        entry["email_id"] = result.get("email_id")
        entry["outcome"] = result.get("status", "")
        if result.get("reason"):
            entry["outcome"] += f" ({result['reason']})"
    elif step.kind == RunStep.Kind.TRIGGER:
        entry["event_id"] = result.get("event_id")
        entry["outcome"] = "event ingested"
    return entry


@admin.register(JourneyRun)
class JourneyRunAdmin(StudioModelAdmin):
    list_display = (
        "short_id",
        "journey_id",
        "contact_link",
        "status_pill",
        "current_node",
        "version",
        "waiting_until",
        "entered_at",
        "ended_at",
    )
    list_filter = (JourneyFilter, "status", CurrentNodeFilter, VersionFilter, "held_out", WaitingUntilFilter)
    list_select_related = ("contact",)
    search_help_text = "Exact run id, engine run id or contact user id."
    search_fields = ("engine_run_id",)  # the search box; get_search_results decides the lookup
    actions = ["cancel_selected", "retry_selected"]
    change_form_template = "studio/run_detail.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="run")
    def short_id(self, run: JourneyRun) -> str:
        return str(run.pk)[:8]

    @admin.display(description="contact")
    def contact_link(self, run: JourneyRun) -> str:
        url = reverse("admin:contacts_contact_change", args=[run.contact_id])
        return format_html('<a href="{}">{}</a>', url, run.contact.email or run.contact.user_id)

    @admin.display(description="status", ordering="status")
    def status_pill(self, run: JourneyRun) -> str:
        return format_html('<span class="studio-pill {}">{}</span>', run.status, run.status)

    def indexed_search(self, queryset: QuerySet, term: str) -> QuerySet:
        if (pk := as_uuid(term)) is not None:
            return queryset.filter(pk=pk)
        from contacts.models import Contact

        contact_id = Contact.objects.filter(user_id=term).values_list("pk", flat=True).first()
        if contact_id is not None:
            return queryset.filter(contact_id=contact_id)
        return queryset.filter(engine_run_id=term)

    # --- actions --------------------------------------------------------------------------------

    @admin.action(
        description="Cancel selected runs (mark exited, stop in the engine)", permissions=["change"]
    )
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        live = queryset.filter(status__in=JourneyRun.LIVE_STATUSES).values_list("pk", flat=True)
        outcome = journey_run_cancel(actor=request.user, run_ids=list(live))
        self.message_user(request, f"Cancelled {len(outcome.cancelled)} run(s).", messages.SUCCESS)
        self._engine_warning(request, outcome.handoff, "Marked exited, but")

    @admin.action(description="Retry selected failed runs", permissions=["change"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for run_id in queryset.filter(status=JourneyRun.Status.FAILED).values_list("pk", flat=True):
            self._retry_one(request, run_id, done=f"Retry of run {run_id} handed to the engine.")

    def _engine_warning(self, request: HttpRequest, handoff: Handoff | None, lead: str) -> None:
        if handoff is not None and handoff.problem:
            self.message_user(request, f"{lead} {handoff.problem}.", messages.WARNING)

    def _retry_one(self, request: HttpRequest, run_id: uuid.UUID, *, done: str) -> None:
        try:
            handoff = journey_run_retry(actor=request.user, run_id=run_id)
        except ActionError as error:
            self.message_user(request, f"Run {run_id} not retried: {error}.", messages.ERROR)
            return
        if handoff.problem:
            self.message_user(request, f"Not retried: {handoff.problem}.", messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)

    # --- the run's page -------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<uuid:run_id>/cancel/", wrap(self.cancel_view), name="journeys_journeyrun_cancel"),
            path("<uuid:run_id>/retry/", wrap(self.retry_view), name="journeys_journeyrun_retry"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        run = get_object_or_404(JourneyRun.objects.select_related("contact", "trigger_event"), pk=object_id)
        steps = [step_view(step) for step in RunStep.objects.filter(run=run).order_by("seq")]
        journey = registry.get(run.journey_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Run {str(run.pk)[:8]} of {run.journey_id}",
            "opts": self.opts,
            "run": run,
            "journey": journey,
            "steps": steps,
            "digests": run_digests(run=run) if journey is not None and journey.digest is not None else [],
            "can_change": self.has_change_permission(request, run),
        }
        return TemplateResponse(request, self.change_form_template, context)

    @staticmethod
    def _back(run_id: uuid.UUID) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:journeys_journeyrun_change", args=[run_id]))

    def cancel_view(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        return require_POST(self._cancel)(request, run_id)

    def _cancel(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        run = get_object_or_404(JourneyRun, pk=run_id)
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        outcome = journey_run_cancel(actor=request.user, run_ids=[run.pk])
        if not outcome.cancelled:
            self.message_user(
                request, f"This run is {run.status}; only a live run can be cancelled.", messages.ERROR
            )
        else:
            self.message_user(
                request, "Run cancelled: marked exited (cancelled_by_operator).", messages.SUCCESS
            )
            self._engine_warning(request, outcome.handoff, "The engine was not told:")
        return self._back(run.pk)

    def retry_view(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        return require_POST(self._retry)(request, run_id)

    def _retry(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        run = get_object_or_404(JourneyRun, pk=run_id)
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        if run.status != JourneyRun.Status.FAILED:
            self.message_user(
                request, f"This run is {run.status}; only a failed run can be retried.", messages.ERROR
            )
        else:
            self._retry_one(request, run.pk, done="Retry handed to the engine.")
        return self._back(run.pk)


@admin.register(EnrollmentSkip)
class EnrollmentSkipAdmin(ReadOnlyStudioAdmin):
    list_display = ("journey_id", "contact", "reason", "created_at")
    ordering = ("-created_at",)
    list_filter = (JourneyFilter, "reason")
    list_select_related = ("contact",)
    readonly_fields = ("journey_id", "contact", "trigger_event", "reason", "created_at")
