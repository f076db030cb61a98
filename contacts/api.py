"""The events & contacts API: `/v1/events`, `/v1/events/batch`, `/v1/contacts`."""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Header, Query, Router
from ninja.errors import HttpError
from pydantic import ValidationError

from contacts import ingest, selectors, services
from contacts.auth import events_auth, ingest_auth, read_auth
from contacts.browser import client_address
from contacts.models import ApiKey, Contact, Event
from contacts.ratelimit import browser_rate_check, ingest_rate_check
from contacts.schemas import (
    BatchIn,
    BatchOut,
    ContactIn,
    ContactOut,
    EventAccepted,
    EventIn,
    TimelineItem,
    TimelineOut,
)

router = Router(tags=["events & contacts"])


def _accepted(result: ingest.IngestResult) -> dict:
    return {
        "eventId": result.event.id,
        "contactId": result.contact.id,
        "duplicate": not result.created,
        "exitedRuns": result.exited_run_ids,
    }


def _rendered(status: int, body: dict) -> HttpResponse:
    """The events endpoints' answer, rendered by orjson and not validated again: the view builds it
    from values it typed itself, and for a 1,000-event batch ninja's validation and renderer were
    a fifth of the request. The `response=` schemas still document it."""
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json; charset=utf-8")


def _rate_check(request: HttpRequest, *, events: int) -> None:
    key: ApiKey = request.auth
    if key.is_publishable:
        browser_rate_check(key_id=key.pk, address=client_address(request))
    ingest_rate_check(key_id=key.pk, events=events, requests_limit=key.rate_limit)


def _browser_problem(item: EventIn) -> str | None:
    """What a publishable key may not do: anyone can copy it from the page, so it must not be
    able to point a contact's mail at another address or rewrite what the server knows of them."""
    if item.address is not None:
        return "a publishable key cannot set a contact's email; set it from your server with a secret key"
    if item.contactProperties or item.timezone is not None:
        return "a publishable key cannot set contact properties; set them from your server with a secret key"
    return None


def _source(request: HttpRequest) -> str:
    return Event.Source.BROWSER if request.auth.is_publishable else Event.Source.API


def _draft(payload: EventIn, *, idempotency_key: str | None = None) -> ingest.EventDraft:
    return ingest.EventDraft(
        name=payload.name,
        user_id=payload.userId,
        email=payload.address,
        properties=payload.eventProperties,
        contact_properties=payload.contact_fields,
        occurred_at=payload.timestamp,
        idempotency_key=payload.idempotencyKey or idempotency_key,
        double_opt_in=payload.doubleOptIn,
    )


@router.post(
    "/events", auth=events_auth, response={202: EventAccepted, 200: EventAccepted}, summary="Send one event"
)
def event_create(
    request: HttpRequest,
    payload: EventIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Accept one event: upsert the contact, store the event, apply exit rules; journeys start
    once the outbox relay hands it to the engine.

    A repeated idempotency key (body `idempotencyKey` or the `Idempotency-Key` header) answers
    200 with the first event's result and stores nothing new; a key that belongs to another
    user's event answers 409.
    """
    if idempotency_key is not None and len(idempotency_key) > 255:
        raise HttpError(422, "Idempotency-Key header must be at most 255 characters")
    _rate_check(request, events=1)
    if request.auth.is_publishable and (problem := _browser_problem(payload)):
        raise HttpError(403, problem)
    outcome = ingest.events_ingest(
        drafts=[_draft(payload, idempotency_key=idempotency_key)], source=_source(request)
    )[0]
    if isinstance(outcome, ingest.IngestError):
        raise outcome
    return _rendered(202 if outcome.created else 200, _accepted(outcome))


@router.post(
    "/events/batch",
    auth=events_auth,
    response={207: BatchOut, 202: BatchOut},
    summary="Send up to 1,000 events",
)
def event_create_batch(request: HttpRequest, payload: BatchIn):
    """Accept up to 1,000 events in one transaction; each gets its own result, and one bad item
    sinks no other (it is rejected with the fields to fix; the rest are stored)."""
    if len(payload.events) > settings.EVENTS_BATCH_MAX:
        raise HttpError(
            413, f"a batch holds at most {settings.EVENTS_BATCH_MAX} events; got {len(payload.events)}"
        )
    _rate_check(request, events=len(payload.events))
    results: list[dict | None] = [None] * len(payload.events)
    drafts: list[ingest.EventDraft] = []
    positions: list[int] = []
    for index, raw in enumerate(payload.events):
        try:
            item = EventIn.model_validate(raw)
        except ValidationError as error:
            results[index] = _rejected(index, _field_errors(error, prefix=f"events[{index}]"))
            continue
        if request.auth.is_publishable and (problem := _browser_problem(item)):
            results[index] = _rejected(index, [{"field": f"events[{index}]", "message": problem}])
            continue
        drafts.append(_draft(item))
        positions.append(index)
    outcomes = ingest.events_ingest(drafts=drafts, source=_source(request))
    for index, outcome in zip(positions, outcomes, strict=True):
        if isinstance(outcome, ingest.IngestError):
            results[index] = _rejected(index, [{"field": f"events[{index}]", "message": str(outcome)}])
        else:
            accepted = _accepted(outcome)
            results[index] = {
                "index": index,
                "status": "accepted" if outcome.created else "duplicate",
                "eventId": accepted["eventId"],
                "contactId": accepted["contactId"],
                "exitedRuns": accepted["exitedRuns"],
                "errors": [],
            }
    counts = {
        "accepted": sum(r["status"] == "accepted" for r in results),
        "duplicates": sum(r["status"] == "duplicate" for r in results),
        "rejected": sum(r["status"] == "rejected" for r in results),
    }
    request.ingest_counts = counts  # type: ignore[attr-defined]  # for the request metrics
    return _rendered(207 if counts["rejected"] else 202, {**counts, "results": results})


def _rejected(index: int, errors: list[dict]) -> dict:
    return {
        "index": index,
        "status": "rejected",
        "eventId": None,
        "contactId": None,
        "exitedRuns": [],
        "errors": errors,
    }


def _field_errors(error: ValidationError, prefix: str) -> list[dict]:
    return [
        {
            "field": ".".join([prefix, *(str(part) for part in e["loc"])]),
            "message": e["msg"],
        }
        for e in error.errors()
    ]


def _contact_out(contact: Contact) -> dict:
    return {
        "id": contact.id,
        "userId": contact.user_id,
        "email": contact.email,
        "properties": contact.properties,
        "timezone": contact.timezone,
        "subscribed": contact.is_subscribed,
        "categoryOptOuts": contact.category_opt_outs,
        "confirmationRequired": contact.confirmation_required,
        "confirmedAt": contact.confirmed_at,
        "createdAt": contact.created_at,
        "updatedAt": contact.updated_at,
    }


@router.put("/contacts", auth=ingest_auth, response={200: ContactOut, 201: ContactOut})
def contact_put(request: HttpRequest, payload: ContactIn):
    """Create or update a contact by `userId`; properties merge into what is there."""
    contact, created = services.contact_upsert(
        user_id=payload.userId,
        email=payload.email,
        properties=payload.contact_fields,
        double_opt_in=payload.doubleOptIn,
    )
    return (201 if created else 200), _contact_out(contact)


def _contact_or_404(key: str) -> Contact:
    contact = selectors.contact_get(key=key)
    if contact is None:
        raise HttpError(404, f"no contact with id or userId {key!r}")
    return contact


@router.get("/contacts/{key}", auth=read_auth, response=ContactOut)
def contact_detail(request: HttpRequest, key: str):
    """A contact by our id or by your user id."""
    return _contact_out(_contact_or_404(key))


@router.get("/contacts/{key}/timeline", auth=read_auth, response=TimelineOut)
def contact_timeline(request: HttpRequest, key: str, limit: int = Query(100, ge=1, le=500)):
    """The contact's events, journey runs and emails, newest first."""
    contact = _contact_or_404(key)
    items = [TimelineItem(**item) for item in selectors.contact_timeline(contact=contact, limit=limit)]
    return {"contact": _contact_out(contact), "items": items}
