"""`POST /v1/webhooks/{source_id}`: inbound webhook sources (see integrations/sources)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from ninja import Router

from integrations.inbound import webhook_receive

router = Router(tags=["webhook sources"])


@router.post(
    "/webhooks/{source_id}",
    auth=None,
    response={200: dict, 400: dict, 401: dict, 403: dict, 404: dict, 422: dict},
    summary="Receive a provider webhook (Stripe, Clerk, Segment, PostHog or your own source)",
)
def webhook_source_receive(request: HttpRequest, source_id: str):
    """Verified by the source's signature scheme (401 when unsigned, wrongly signed or stale);
    each mapped event is ingested like `POST /v1/events`. A redelivery answers 200 and changes
    nothing. A delivery of several messages (a Segment batch) answers each in `results`:
    `{messageId, status: accepted|duplicate|ignored|refused, eventId | detail}`."""
    outcome = webhook_receive(source_id=source_id, body=request.body, headers=dict(request.headers))
    body = {"detail": outcome.detail, "eventIds": outcome.event_ids, "duplicate": outcome.duplicate}
    if outcome.results:
        body["results"] = outcome.results
    return JsonResponse(body, status=outcome.status_code)
