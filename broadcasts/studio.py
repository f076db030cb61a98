"""Studio pages for broadcasts: the list with progress bars, a page per broadcast (progress,
report, pause / resume / cancel) and the create page (audience preview, test send).

Every change goes through `broadcasts.services`, so the locks, state rules and audit entries are
the API's; a change the state does not allow is a message on the page, never an error page.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from broadcasts import services
from broadcasts.audience import audience_count
from broadcasts.charts import report_bars
from broadcasts.models import Broadcast
from broadcasts.selectors import broadcast_progress, broadcast_report, broadcasts_done_counts
from emails.registry import CONFIRMATION_TEMPLATE, all_templates

LIST_ROWS = 100
Status = Broadcast.Status
ACTIONS = {
    "pause": (services.broadcast_pause, (Status.SCHEDULED, Status.RUNNING), "Paused"),
    "resume": (services.broadcast_resume, (Status.PAUSED,), "Resumed"),
    "cancel": (services.broadcast_cancel, Broadcast.LIVE_STATUSES, "Cancelled"),
}


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), **extra}


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def broadcasts_view(request: HttpRequest) -> HttpResponse:
    _require(request, "broadcasts.view_broadcast")
    broadcasts = list(Broadcast.objects.all()[:LIST_ROWS])
    counts = broadcasts_done_counts([b.pk for b in broadcasts])
    rows = []
    for broadcast in broadcasts:
        total, done = counts.get(broadcast.pk, (broadcast.recipients_total, 0))
        rows.append({"broadcast": broadcast, "total": total, "done": done, "percent": _percent(done, total)})
    return TemplateResponse(
        request,
        "studio/broadcasts.html",
        _context(
            request,
            title="Broadcasts",
            rows=rows,
            can_add=request.user.has_perm("broadcasts.add_broadcast"),
        ),
    )


def _progress_parts(progress) -> list[dict[str, Any]]:
    """The progress bar's stretches, in order: sent (or enrolled), held, skipped, remaining."""
    skipped = sum(progress.skipped.values())
    parts = [
        ("sent", "Sent", progress.sent),
        ("enrolled", "Enrolled", progress.enrolled),
        ("held", "Held", progress.held),
        ("skipped", "Skipped", skipped),
        ("remaining", "Remaining", progress.remaining),
    ]
    return [
        {"key": key, "label": label, "count": n, "percent": _percent(n, progress.total)}
        for key, label, n in parts
        if n or key in ("sent", "remaining")
    ]


def broadcast_detail_view(request: HttpRequest, broadcast_id: UUID) -> HttpResponse:
    _require(request, "broadcasts.view_broadcast")
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None:
        raise Http404(f"no broadcast {broadcast_id}")
    progress = broadcast_progress(broadcast=broadcast)
    report = broadcast_report(broadcast_id=broadcast.pk) if broadcast.started_at else None
    can_change = request.user.has_perm("broadcasts.change_broadcast")
    return TemplateResponse(
        request,
        "studio/broadcast_detail.html",
        _context(
            request,
            title=broadcast.name,
            broadcast=broadcast,
            props_json=json.dumps(broadcast.props, indent=2, ensure_ascii=False) if broadcast.props else "",
            progress=progress,
            parts=_progress_parts(progress),
            percent_done=_percent(progress.done, progress.total),
            skipped=sorted(progress.skipped.items(), key=lambda kv: -kv[1]),
            report=report,
            chart=report_bars(report, label=f"What became of {broadcast.name}'s emails") if report else "",
            actions=[
                name
                for name, (_, allowed, _) in ACTIONS.items()
                if can_change and broadcast.status in allowed
            ],
        ),
    )


@require_POST
def broadcast_action_view(request: HttpRequest, broadcast_id: UUID, action: str) -> HttpResponse:
    _require(request, "broadcasts.change_broadcast")
    if action not in ACTIONS:
        raise Http404(f"no action {action!r}")
    service, _, done = ACTIONS[action]
    try:
        service(broadcast_id=broadcast_id, actor=request.user)
    except Broadcast.DoesNotExist:
        raise Http404(f"no broadcast {broadcast_id}") from None
    except services.BroadcastError as error:
        messages.error(request, f"Not {action}d: {error}.")
    else:
        messages.success(request, f"{done}.")
    return HttpResponseRedirect(reverse("admin:studio_broadcast", args=[broadcast_id]))


class JSONField(forms.CharField):
    """A textarea holding JSON (an object or a list); empty is `empty`."""

    def __init__(self, *, empty: Any, **kwargs: Any) -> None:
        self.empty = empty
        super().__init__(required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), **kwargs)

    def clean(self, value: Any) -> Any:
        text = (super().clean(value) or "").strip()
        if not text:
            return self.empty
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not JSON: {error.msg} (line {error.lineno})") from None
        if not isinstance(data, type(self.empty)):
            kind = "an object {…}" if isinstance(self.empty, dict) else "a list […]"
            raise forms.ValidationError(f"give {kind}")
        return data


class ServiceChoiceField(forms.ChoiceField):
    """A select whose value the broadcast service checks (its message lists what exists), so a
    stale or crafted value gets the API's error beside the field."""

    def valid_value(self, value: Any) -> bool:
        return True


def _choices(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", "—"), *items]


class BroadcastForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    template = ServiceChoiceField(required=False)
    journey = ServiceChoiceField(required=False)
    props = JSONField(empty={}, help_text='The template\'s props, the same for everyone: {"headline": "…"}')
    segment = ServiceChoiceField(required=False)
    filter = JSONField(
        empty=[],
        help_text='Or conditions over contact properties: [{"property": "plan", "operator": "eq", "value": "pro"}]',
    )
    category = forms.CharField(max_length=64, required=False, help_text="Empty: the template's category")
    rate = forms.FloatField(initial=50.0, help_text="Sends per second across all workers; 0 is unthrottled")
    send_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: start at once",
    )
    test_to = forms.EmailField(required=False, label="Test send to")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from audiences.segments import registry as segments
        from journeys.registry import registry as journeys

        self.fields["template"].choices = _choices(
            [(t.key, t.key) for t in all_templates() if t.key != CONFIRMATION_TEMPLATE]
        )
        self.fields["journey"].choices = _choices([(j.id, j.name) for j in journeys.all()])
        self.fields["segment"].choices = _choices([(s.id, s.name) for s in segments.all()])

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "template": data["template"],
            "journey_id": data["journey"],
            "props": data["props"],
            "category": data["category"],
            "segment_id": data["segment"],
            "conditions": data["filter"],
            "rate": data["rate"],
        }


def broadcast_create_view(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST with `intent` preview (audience size), test (one email to `test_to`)
    or create; each validates through the service, whose errors land beside their field."""
    _require(request, "broadcasts.add_broadcast")
    audience_size = None
    if request.method != "POST":
        form = BroadcastForm()
    else:
        form = BroadcastForm(request.POST)
        intent = request.POST.get("intent", "create")
        if form.is_valid():
            arguments = form.service_arguments()
            try:
                conditions = services.broadcast_validate(**arguments)
                if intent == "preview":
                    audience_size = audience_count(segment_id=arguments["segment_id"], conditions=conditions)
                elif intent == "test":
                    return _test_send(request, form, arguments)
                else:
                    if not form.cleaned_data["name"].strip():
                        form.add_error("name", "give the broadcast a name")
                    else:
                        broadcast = services.broadcast_create(
                            name=form.cleaned_data["name"].strip(),
                            send_at=form.cleaned_data["send_at"],
                            actor=request.user,
                            **arguments,
                        )
                        messages.success(request, f"Broadcast {broadcast.name!r} created.")
                        return HttpResponseRedirect(reverse("admin:studio_broadcast", args=[broadcast.pk]))
            except services.BroadcastError as error:
                form.add_error(error.field if error.field in form.fields else None, str(error))
    return _create_page(request, form, audience_size)


def _test_send(request: HttpRequest, form: BroadcastForm, arguments: dict[str, Any]) -> HttpResponse:
    to = form.cleaned_data["test_to"]
    if not arguments["template"]:
        form.add_error("template", "a test send needs a template (a journey sends its own emails)")
    elif not to:
        form.add_error("test_to", "give the address to send the test to")
    else:
        log = services.broadcast_test_send(
            actor=request.user, template=arguments["template"], props=arguments["props"], to=to
        )
        messages.info(request, f"Test send to {to}: {log.get_status_display().lower()}.")
    return _create_page(request, form, None)


def _create_page(request: HttpRequest, form: BroadcastForm, audience_size: int | None) -> HttpResponse:
    return TemplateResponse(
        request,
        "studio/broadcast_create.html",
        _context(request, title="New broadcast", form=form, audience_size=audience_size),
    )
