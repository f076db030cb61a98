"""Admin API for contacts and suppressions (`/v1/admin/...`, admin scope): erase, suppress, export."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, Field

from contacts.actions import (
    ContactActionError,
    api_key_actor,
    contact_erase_by_operator,
    suppression_add_by_operator,
    suppression_remove_by_operator,
)
from contacts.addresses import EmailError
from contacts.auth import admin_auth
from contacts.exports import contact_data_export, contacts_export
from contacts.fields import MailableAddress
from contacts.models import Suppression
from contacts.schemas import CleanText
from contacts.selectors import contact_get

router = Router(auth=admin_auth, tags=["admin: contacts & suppressions"])
SuppressionReason = Literal["bounce", "complaint", "manual"]
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class EngineOut(Schema):
    done: bool
    problem: str


class ErasedOut(Schema):
    contactId: Any
    erasedAt: datetime
    exitedRuns: list[Any]
    engine: EngineOut | None = None


class SuppressionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    email: MailableAddress
    reason: SuppressionReason = "manual"
    note: CleanText = Field(default="", max_length=500)


class SuppressionOut(Schema):
    email: str
    reason: SuppressionReason
    note: str
    createdAt: datetime


class SuppressionPageOut(Schema):
    items: list[SuppressionOut]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


def _suppression_out(s: Suppression) -> dict[str, Any]:
    return {"email": s.email, "reason": s.reason, "note": s.note, "createdAt": s.created_at}


@router.get("/contacts/export")
def contacts_export_view(request: HttpRequest, format: Literal["csv", "jsonl"] = Query("csv")):
    """Every contact (erased ones aside) with its consent state, streamed as CSV or JSON lines.
    The columns are the ones `manage.py contacts_import` reads, so the file imports back."""
    response = StreamingHttpResponse(contacts_export(fmt=format), content_type=CONTENT_TYPES[format])
    response["Content-Disposition"] = f'attachment; filename="contacts.{format}"'
    return response


@router.get("/contacts/{key}/export", response=dict[str, Any])
def contact_data_export_view(request: HttpRequest, key: str):
    """One contact's data for an access request: the contact and its consent state, its consent
    ledger (each change: when, what, source, IP and user agent where known, the link's SHA-256) and
    its events."""
    contact = contact_get(key=key)
    if contact is None:
        raise HttpError(404, f"no contact with id or userId {key!r}")
    return contact_data_export(contact=contact)


@router.post("/contacts/{key}/erase", response=ErasedOut)
def contact_erase_view(request: HttpRequest, key: str):
    """Erase a contact's personal data (email, properties, event and email contents); its rows stay
    so counts stay right, and its live runs are exited and stopped in the engine."""
    contact = contact_get(key=key)
    if contact is None:
        raise HttpError(404, f"no contact with id or userId {key!r}")
    try:
        erased = contact_erase_by_operator(actor=api_key_actor(request.auth), contact=contact)
    except ContactActionError as error:
        raise HttpError(409, str(error)) from None
    handoff = erased.handoff
    return {
        "contactId": erased.contact.pk,
        "erasedAt": erased.contact.erased_at,
        "exitedRuns": erased.exited_run_ids,
        "engine": None if handoff is None else {"done": handoff.done, "problem": handoff.problem},
    }


@router.get("/suppressions", response=SuppressionPageOut)
def suppressions_list(
    request: HttpRequest,
    email: str | None = Query(None, description="Addresses starting with this"),
    reason: SuppressionReason | None = None,
    cursor: str | None = Query(None, description="`nextCursor` of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
):
    """Suppressed addresses in address order, a page at a time."""
    rows = Suppression.objects.order_by("email")
    if email:
        rows = rows.filter(email__startswith=email.strip().lower())
    if reason:
        rows = rows.filter(reason=reason)
    if cursor:
        rows = rows.filter(email__gt=cursor)
    found = list(rows[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return {
        "items": [_suppression_out(s) for s in found],
        "nextCursor": found[-1].email if more and found else None,
    }


@router.post("/suppressions", response={201: SuppressionOut, 200: SuppressionOut})
def suppression_add(request: HttpRequest, payload: SuppressionIn):
    """Suppress an address: nothing is sent to it from now on. 200 if it already was."""
    existed = Suppression.objects.filter(email__iexact=payload.email.strip()).exists()
    try:
        suppression = suppression_add_by_operator(
            actor=api_key_actor(request.auth), email=payload.email, reason=payload.reason, note=payload.note
        )
    except EmailError as error:
        raise HttpError(422, str(error)) from None
    return (200 if existed else 201), _suppression_out(suppression)


@router.delete("/suppressions/{email}", response={204: None})
def suppression_remove(request: HttpRequest, email: str):
    """Lift an address's suppression. 404 if it was not suppressed."""
    if not suppression_remove_by_operator(actor=api_key_actor(request.auth), email=email):
        raise HttpError(404, f"{email!r} is not suppressed")
    return 204, None
