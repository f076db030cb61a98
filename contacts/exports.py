"""Contacts out of Hogsend, streamed: CSV or JSON lines with each contact's consent state.

The columns are the ones `contacts.imports` reads, so an exported file imports back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from contacts.models import Contact

EXPORT_COLUMNS = (
    "user_id",
    "email",
    "subscribed",
    "unsubscribed_at",
    "category_opt_outs",
    "category_opt_ins",
    "properties",
    "created_at",
)


def contacts_export_records(*, chunk_size: int = 2_000) -> Iterator[dict[str, Any]]:
    """Every contact that was not erased, oldest first, with its consent state; read with a
    server-side cursor so a million rows never sit in memory."""
    rows = (
        Contact.objects.filter(erased_at__isnull=True)
        .order_by("created_at", "id")
        .values_list(
            "user_id",
            "email",
            "unsubscribed_at",
            "category_opt_outs",
            "category_opt_ins",
            "properties",
            "created_at",
        )
        .iterator(chunk_size=chunk_size)
    )
    for user_id, email, unsubscribed_at, opt_outs, opt_ins, properties, created_at in rows:
        yield {
            "user_id": user_id,
            "email": email,
            "subscribed": unsubscribed_at is None,
            "unsubscribed_at": unsubscribed_at.isoformat() if unsubscribed_at else None,
            "category_opt_outs": sorted(opt_outs),
            "category_opt_ins": sorted(opt_ins),
            "properties": properties,
            "created_at": created_at.isoformat(),
        }


def lines_batched(lines: Iterable[str], size: int = 500) -> Iterator[str]:
    """Join a stream of lines into chunks of `size`, so a streamed export writes few, large pieces."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def contacts_export_csv() -> Iterator[str]:
    """The export as CSV text, a few hundred rows per piece: lists joined by ';', properties as JSON."""

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def line(values: Iterable[Any]) -> str:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(values)
            return buffer.getvalue()

        yield line(EXPORT_COLUMNS)
        for record in contacts_export_records():
            yield line(
                [
                    record["user_id"],
                    record["email"],
                    "true" if record["subscribed"] else "false",
                    record["unsubscribed_at"] or "",
                    ";".join(record["category_opt_outs"]),
                    ";".join(record["category_opt_ins"]),
                    json.dumps(record["properties"], separators=(",", ":"), sort_keys=True),
                    record["created_at"],
                ]
            )

    return lines_batched(lines())


def contacts_export_jsonl() -> Iterator[str]:
    """The export as JSON lines, one contact per line."""
    return lines_batched(
        json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
        for record in contacts_export_records()
    )


def contacts_export(*, fmt: str) -> Iterator[str]:
    if fmt == "csv":
        return contacts_export_csv()
    if fmt == "jsonl":
        return contacts_export_jsonl()
    raise ValueError(f"format must be csv or jsonl, not {fmt!r}")


# --- one contact's data, for an access request ----------------------------------------------------


def contact_data_export(*, contact: Contact, events_limit: int = 10_000) -> dict[str, Any]:
    """Everything the contacts app holds about one person, as JSON: the contact with its consent
    state, its consent ledger (how and when each consent change happened) and its events."""
    from contacts.consent import consent_change_out, consent_history

    events = contact.events.order_by("-occurred_at").values("name", "occurred_at", "source", "properties")
    return {
        "contact": {
            "id": str(contact.pk),
            "userId": contact.user_id,
            "email": contact.email,
            "properties": contact.properties,
            "subscribed": contact.is_subscribed,
            "unsubscribedAt": contact.unsubscribed_at.isoformat() if contact.unsubscribed_at else None,
            "categoryOptOuts": sorted(contact.category_opt_outs),
            "categoryOptIns": sorted(contact.category_opt_ins),
            "confirmationRequired": contact.confirmation_required,
            "confirmedAt": contact.confirmed_at.isoformat() if contact.confirmed_at else None,
            "createdAt": contact.created_at.isoformat(),
            "erasedAt": contact.erased_at.isoformat() if contact.erased_at else None,
        },
        "consentLedger": [consent_change_out(row) for row in consent_history(contact=contact)],
        "events": [
            {
                "name": e["name"],
                "occurredAt": e["occurred_at"].isoformat(),
                "source": e["source"],
                "properties": e["properties"],
            }
            for e in events[:events_limit]
        ],
    }
