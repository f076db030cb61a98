"""Studio pages for segments: the list with sizes, a page per segment (size over time, members,
export), and the segments section of a contact's page."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from audiences import selectors
from audiences.charts import size_line
from audiences.exports import FORMATS, segment_members_export
from audiences.models import SegmentState
from audiences.segments import UnknownSegment, registry, segment_get

MEMBER_ROWS = 50


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm("contacts.view_contact"):
        raise PermissionDenied


def segments_view(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    sizes = selectors.segment_sizes()
    states = {s.segment_id: s for s in SegmentState.objects.all()}
    rows = [
        {"segment": s, "size": sizes[s.id], "state": states.get(s.id), "level": registry.level(s.id)}
        for s in registry.all()
    ]
    return TemplateResponse(
        request,
        "studio/segments.html",
        {**admin.site.each_context(request), "title": "Segments", "rows": rows},
    )


def segment_detail_view(request: HttpRequest, segment_id: str) -> HttpResponse:
    _require_view(request)
    try:
        segment = segment_get(segment_id)
    except UnknownSegment as error:
        raise Http404(str(error)) from None
    history = selectors.segment_size_history(segment, days=30)
    page = selectors.segment_members_page(segment.id, limit=MEMBER_ROWS)
    return TemplateResponse(
        request,
        "studio/segment_detail.html",
        {
            **admin.site.each_context(request),
            "title": segment.name,
            "segment": segment,
            "size": selectors.segment_size(segment.id),
            "state": SegmentState.objects.filter(segment_id=segment.id).first(),
            "chart": size_line(history, label=f"Size of {segment.name}, last 30 days"),
            "members": page.members,
            "more": page.next_cursor is not None,
            "member_rows": MEMBER_ROWS,
            "reads": sorted(segment.references.segments),
            "read_by": [s for s in registry.dependents([segment.id])],
        },
    )


def segment_export_view(request: HttpRequest, segment_id: str) -> HttpResponse:
    _require_view(request)
    fmt = request.GET.get("format", "csv")
    if fmt not in FORMATS:
        return HttpResponse("format must be csv or jsonl", status=400, content_type="text/plain")
    try:
        body = segment_members_export(segment_id, fmt=fmt)
    except UnknownSegment as error:
        raise Http404(str(error)) from None
    response = StreamingHttpResponse(body, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="segment-{segment_id}.{fmt}"'
    return response


def contact_segments_section(*, contact, request: HttpRequest) -> SafeString:
    """The segments a contact is in, for its Studio page (installed into the contact page); one
    query, none when no segment is defined."""
    if not registry.all():
        return SafeString("")
    return render_to_string(
        "studio/_contact_segments.html",
        {"memberships": selectors.contact_segments(contact_id=contact.pk)},
        request=request,
    )
