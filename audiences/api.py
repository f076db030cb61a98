"""The segments API: `/v1/segments`, a segment, its members (keyset pages) and their export."""

from __future__ import annotations

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router
from ninja.errors import HttpError

from audiences import selectors
from audiences.exports import FORMATS, segment_members_export
from audiences.models import SegmentState
from audiences.schemas import MembersPageOut, SegmentListOut, SegmentOut
from audiences.segments import Segment, UnknownSegment, registry, segment_get
from contacts.auth import read_auth
from contacts.pagination import CURSOR_DESCRIPTION, BadCursor, Cursor, cursor_decode, cursor_encode

router = Router(tags=["segments"])


def _segment_or_404(segment_id: str) -> Segment:
    try:
        return segment_get(segment_id)
    except UnknownSegment:
        known = ", ".join(s.id for s in registry.all()) or "none"
        raise HttpError(404, f"no segment with id {segment_id!r}; defined: {known}") from None


def _out(segment: Segment, *, size: int, refreshed: dict) -> dict:
    return {
        "id": segment.id,
        "name": segment.name,
        "description": segment.description,
        "condition": segment.describe(),
        "timeBased": segment.time_based,
        "size": size,
        "refreshedAt": refreshed.get(segment.id),
    }


def _refreshed() -> dict:
    return dict(SegmentState.objects.values_list("segment_id", "refreshed_at"))


@router.get("/segments", auth=read_auth, response=SegmentListOut, summary="List segments with their sizes")
def segments_list(request: HttpRequest):
    """Every segment the code defines, with its current size (members now)."""
    sizes, refreshed = selectors.segment_sizes(), _refreshed()
    return {"items": [_out(s, size=sizes[s.id], refreshed=refreshed) for s in registry.all()]}


@router.get("/segments/{segment_id}", auth=read_auth, response=SegmentOut, summary="One segment")
def segment_detail(request: HttpRequest, segment_id: str):
    segment = _segment_or_404(segment_id)
    return _out(segment, size=selectors.segment_size(segment.id), refreshed=_refreshed())


@router.get(
    "/segments/{segment_id}/members", auth=read_auth, response=MembersPageOut, summary="A segment's members"
)
def segment_members(
    request: HttpRequest,
    segment_id: str,
    cursor: Cursor | None = Query(None, description=CURSOR_DESCRIPTION),
    limit: int = Query(100, ge=1, le=1000),
):
    """Members, most recently entered first; pass the previous page's `nextCursor` as `cursor`."""
    segment = _segment_or_404(segment_id)
    before = None
    if cursor:
        try:
            before = cursor_decode(cursor)
        except BadCursor as error:
            raise HttpError(422, str(error)) from None
    page = selectors.segment_members_page(segment.id, limit=limit, before=before)
    return {
        "items": [
            {
                "contactId": contact.pk,
                "userId": contact.user_id,
                "email": contact.email,
                "properties": contact.properties,
                "enteredAt": entered_at,
            }
            for contact, entered_at in page.members
        ],
        "nextCursor": cursor_encode(at=page.next_cursor[0], pk=page.next_cursor[1])
        if page.next_cursor
        else None,
    }


@router.get(
    "/segments/{segment_id}/export",
    auth=read_auth,
    summary="Export a segment's members (CSV or JSON lines)",
    response={200: None},
)
def segment_export(
    request: HttpRequest, segment_id: str, format: str = Query("csv", pattern="^(csv|jsonl)$")
):
    """Every member, streamed: `format=csv` (user_id, email, entered_at, properties as JSON) or
    `format=jsonl` (one JSON object per line)."""
    segment = _segment_or_404(segment_id)
    response = StreamingHttpResponse(
        segment_members_export(segment.id, fmt=format), content_type=FORMATS[format]
    )
    response["Content-Disposition"] = f'attachment; filename="segment-{segment.id}.{format}"'
    return response
