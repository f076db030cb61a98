"""The ingest pipeline: events in, set-based, one transaction per call.

One path serves a single event and a 1,000-event batch: contacts are upserted and events inserted
with one statement, exit rules applied to the events that can exit anything, and the relay woken
once. Nothing slow happens here: the engine is reached by the outbox relay, after
commit, never by the request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from contacts.conversions import conversions_apply, goal_rules
from contacts.membership import membership
from contacts.models import Contact, Event
from contacts.outbox import dispatcher, event_collector, exit_rules, notify_channel
from contacts.prepared import prepared_cursor
from contacts.rows import unsaved
from contacts.timezones import TIMEZONE_PROPERTY, timezone_problem

logger = logging.getLogger(__name__)
MAX_KEY_LENGTH = 255


class IngestError(ValueError):
    """Input the pipeline cannot store; the message says what to fix."""

    status_code = 422


class IdempotencyConflict(IngestError):
    """The idempotency key already names an event of another user."""

    status_code = 409


@dataclass(frozen=True)
class EventDraft:
    """One event as a client sent it, validated, not yet stored."""

    name: str
    user_id: str
    email: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    contact_properties: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    idempotency_key: str | None = None
    # A contact this event creates must confirm by email first; None: CONTACTS_DOUBLE_OPT_IN.
    double_opt_in: bool | None = None


@dataclass
class IngestResult:
    event: Event
    contact: Contact
    exited_run_ids: list[UUID] = field(default_factory=list)
    created: bool = True


def event_ingest(
    *,
    name: str,
    user_id: str,
    email: str | None = None,
    properties: dict[str, Any] | None = None,
    contact_properties: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    source: str = Event.Source.API,
    dispatch: bool = True,
    double_opt_in: bool | None = None,
) -> IngestResult:
    """Accept one event; a known idempotency key returns the first result and stores nothing.

    Raises `IngestError` (or `IdempotencyConflict`) with a message that says what to fix.
    """
    draft = EventDraft(
        name=name,
        user_id=user_id,
        email=email,
        properties=properties or {},
        contact_properties=contact_properties or {},
        occurred_at=occurred_at,
        idempotency_key=idempotency_key or None,
        double_opt_in=double_opt_in,
    )
    outcome = events_ingest(drafts=[draft], source=source, dispatch=dispatch)[0]
    if isinstance(outcome, IngestError):
        raise outcome
    return outcome


def events_ingest(
    *, drafts: Sequence[EventDraft], source: str = Event.Source.API, dispatch: bool = True
) -> list[IngestResult | IngestError]:
    """Store events set-based; one outcome per draft, in order.

    1. Check each draft; look every idempotency key up at once: a key already stored for the same
       user is a duplicate (the first result), for another user a conflict; a key used twice in
       one call answers the second use with the first's result.
    2. In one transaction: upsert the contacts and insert the events (one statement; a key that a
       concurrent request stored first turns that item into a duplicate), apply the exit rules to
       the events whose name can exit a journey, collect the events open digests gather (one
       statement, only for events a digest journey is triggered by), and wake the relay. A single
       event that nothing else must hear is that one statement alone, its own transaction.
    3. If the database refuses the set (a value PostgreSQL cannot store), nothing of it is kept and
       each event is stored alone, so one bad event sinks no other and every item gets an answer.
    """
    outcomes: list[IngestResult | IngestError | None] = [_check(d) for d in drafts]
    repeats = _resolve_known_keys(drafts, outcomes)
    fresh = [i for i, outcome in enumerate(outcomes) if outcome is None and i not in repeats]
    if fresh:
        try:
            alone = len(fresh) == 1 and _one_statement_suffices(drafts[fresh[0]], dispatch=dispatch)
            # Alone and outside any transaction, the statement is its own; inside the caller's,
            # a savepoint keeps a refused statement from aborting it.
            with transaction.atomic() if not alone or connection.in_atomic_block else nullcontext():
                stored = _store([drafts[i] for i in fresh], source=source, dispatch=dispatch, alone=alone)
            for i, result in zip(fresh, stored, strict=True):
                outcomes[i] = result
        except (OperationalError, InterfaceError):
            raise  # the database is down, busy or timed out: a 503 to retry, not the client's fault
        except DatabaseError as error:
            if len(fresh) == 1:
                outcomes[fresh[0]] = _refused(error)
            else:
                logger.info(
                    "ingest: a set of %d events was refused (%s); storing one by one", len(fresh), error
                )
                for i in fresh:
                    outcomes[i] = events_ingest(drafts=[drafts[i]], source=source, dispatch=dispatch)[0]
    for i, first in repeats.items():
        outcomes[i] = _repeat_of(outcomes[first])
    return outcomes  # type: ignore[return-value]


def _check(draft: EventDraft) -> IngestError | None:
    if not draft.name or not draft.name.strip():
        return IngestError("name is required, e.g. 'user.created'")
    if not draft.user_id or not draft.user_id.strip():
        return IngestError("userId is required: your product's id for the user")
    for label, value in (("name", draft.name), ("userId", draft.user_id)):
        if len(value) > MAX_KEY_LENGTH:
            return IngestError(f"{label} must be at most {MAX_KEY_LENGTH} characters; got {len(value)}")
    if draft.idempotency_key and len(draft.idempotency_key) > MAX_KEY_LENGTH:
        return IngestError(f"idempotencyKey must be at most {MAX_KEY_LENGTH} characters")
    if TIMEZONE_PROPERTY in draft.contact_properties:
        problem = timezone_problem(draft.contact_properties[TIMEZONE_PROPERTY])
        if problem:
            return IngestError(f"contactProperties.{TIMEZONE_PROPERTY}: {problem}")
    return None


def _resolve_known_keys(drafts: Sequence[EventDraft], outcomes: list) -> dict[int, int]:
    """Answer drafts whose key is already stored; returns {index: index of its first use} for keys
    used twice in this call (answered once the first is stored)."""
    keyed = [i for i, d in enumerate(drafts) if outcomes[i] is None and d.idempotency_key]
    if not keyed:
        return {}
    known = {
        e.idempotency_key: e
        for e in Event.objects.select_related("contact").filter(
            idempotency_key__in={drafts[i].idempotency_key for i in keyed}
        )
    }
    first_use: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for i in keyed:
        draft = drafts[i]
        key = draft.idempotency_key or ""
        if key in known:
            first = known[key]
            outcomes[i] = (
                _conflict(key)
                if first.contact.user_id != draft.user_id
                else IngestResult(
                    event=first,
                    contact=first.contact,
                    exited_run_ids=list(first.exited_run_ids),
                    created=False,
                )
            )
        elif key in first_use:
            if drafts[first_use[key]].user_id == draft.user_id:
                repeats[i] = first_use[key]
            else:
                outcomes[i] = _conflict(key)
        else:
            first_use[key] = i
    return repeats


def _repeat_of(first: IngestResult | IngestError | None) -> IngestResult | IngestError:
    if isinstance(first, IngestResult):
        return IngestResult(
            event=first.event, contact=first.contact, exited_run_ids=first.exited_run_ids, created=False
        )
    return first or IngestError("the first event with this idempotency key was not stored")


def _conflict(key: str) -> IdempotencyConflict:
    # Never echo the other user's id back: the key's owner is not this caller's business.
    return IdempotencyConflict(
        f"idempotency key {key[:80]!r} already belongs to an event of another user; "
        "use a key unique to each event, e.g. '<userId>:<event>:<your event id>'"
    )


def _refused(error: DatabaseError) -> IngestError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return IngestError(f"the database refused this event ({reason}); remove the offending value and retry")


# --- the statement ---------------------------------------------------------------------------

# Contacts upserted and events inserted in one statement, the rows passed as two JSON documents
# (one parameter each: no per-value adaptation in Python, one parse in PostgreSQL). With the
# default dispatcher the relay's NOTIFY rides along too, so a single event costs one round trip.
_INGEST_SQL = """
WITH incoming AS (
    SELECT * FROM jsonb_to_recordset(%(contacts)s::jsonb)
        AS t(id uuid, user_id text, email text, properties jsonb, confirm boolean)
), upserted AS (
    INSERT INTO contacts_contact AS c
        (id, user_id, email, properties, category_opt_outs, category_opt_ins, confirmation_required,
         created_at, updated_at)
    SELECT id, user_id, email, properties, '{}', '{}', confirm, %(now)s, %(now)s
    FROM incoming ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET
        email = CASE WHEN EXCLUDED.email <> '' THEN EXCLUDED.email ELSE c.email END,
        properties = c.properties || EXCLUDED.properties,
        updated_at = EXCLUDED.updated_at
    -- Only a real change writes the row: repeat events for a known user stay read-only.
    WHERE (EXCLUDED.email <> '' AND EXCLUDED.email <> c.email)
       OR (c.properties || EXCLUDED.properties) IS DISTINCT FROM c.properties
    RETURNING @contact_columns, (xmax = 0) AS inserted
), known AS (
    SELECT * FROM upserted
    UNION ALL
    -- One probe of the user id index per incoming user: a join (jsonb_to_recordset estimated at
    -- 100 rows) or `user_id = ANY(...)` (10 estimated) made a scan of every contact the cheaper
    -- plan up to a few thousand contacts, and a prepared statement keeps its plan until the next
    -- ANALYZE while ingest grows the table. A LATERAL subquery with a LIMIT is not flattened into
    -- a join: it runs per user id, by the index once the table holds more than a few pages.
    SELECT found.*, false FROM incoming i
    CROSS JOIN LATERAL (
        SELECT @contact_columns FROM contacts_contact c WHERE c.user_id = i.user_id LIMIT 1
    ) found
    WHERE NOT EXISTS (SELECT 1 FROM upserted u WHERE u.user_id = i.user_id)
), stored AS (
    INSERT INTO contacts_event
        (id, contact_id, name, properties, occurred_at, received_at, idempotency_key, source,
         dispatch_state, dispatch_attempts, exited_run_ids)
    SELECT e.id, k.id, e.name, e.properties, e.occurred_at, %(now)s, e.key, %(source)s, 'pending', 0, '{}'
    FROM jsonb_to_recordset(%(events)s::jsonb)
        AS e(id uuid, user_id text, name text, properties jsonb, occurred_at timestamptz, key text)
    JOIN known k ON k.user_id = e.user_id
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, contact_id
)
SELECT k.*, coalesce(s.ids, '{}') AS stored_event_ids,
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM stored LIMIT 1) one
        WHERE %(notify)s) AS notified
FROM known k
LEFT JOIN (SELECT contact_id, array_agg(id) AS ids FROM stored GROUP BY contact_id) s ON s.contact_id = k.id
""".replace(
    # The contact's columns by name, not c.*: a column a later migration adds must not change the
    # prepared statement's result type under the processes still running (PostgreSQL refuses
    # that: "cached plan must not change result type").
    "@contact_columns",
    ", ".join(f"c.{f.column}" for f in Contact._meta.concrete_fields),
)
# The statement's row: the contact's columns in field order (read positionally, Django's fast
# path for a model instance), then these.
_EXTRA_COLUMNS = ("inserted", "stored_event_ids", "notified")
_CONTACT_ATTNAMES = [f.attname for f in Contact._meta.concrete_fields]
_CONTACT_WIDTH = len(_CONTACT_ATTNAMES)
_CONTACT_PROPERTIES = _CONTACT_ATTNAMES.index("properties")


_DJANGO_JSON = DjangoJSONEncoder()
# Datetimes and dataclasses go through Django's encoder, as before: its times, its refusals.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json(value: Any) -> str:
    """The rows as one JSON document: orjson, a ninth of the json module's time for one event; a
    value orjson refuses (an integer beyond 64 bits, a non-string key, a lone surrogate) falls
    back to the json module, which wrote every document before."""
    try:
        return orjson.dumps(value, default=_DJANGO_JSON.default, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))


def _wants_confirmation(draft: EventDraft) -> bool:
    from django.conf import settings

    return settings.CONTACTS_DOUBLE_OPT_IN if draft.double_opt_in is None else draft.double_opt_in


def _one_statement_suffices(draft: EventDraft, *, dispatch: bool) -> bool:
    """A single event that nothing else must hear in its transaction (no exit rule, goal, digest
    or segment that reads it, no double opt-in, no destination listening to contacts, the default
    dispatcher): its one statement is its transaction, and BEGIN and COMMIT are two round trips
    saved."""
    from contacts.lifecycle import contacts_listened

    return (
        not (dispatch and notify_channel() is None)
        and not _wants_confirmation(draft)
        and draft.name not in exit_rules().event_names()
        and draft.name not in goal_rules().event_names()
        and draft.name not in event_collector().event_names()
        and not membership().watches(
            event_name=draft.name,
            property_keys=[*draft.contact_properties, *(["$email"] if draft.email else [])],
        )
        and not contacts_listened()
    )


def _store(
    drafts: Sequence[EventDraft], *, source: str, dispatch: bool, alone: bool = False
) -> list[IngestResult | IngestError]:
    """`alone`: the caller checked `_one_statement_suffices`; nothing is written beyond the statement."""
    now = timezone.now()
    channel = notify_channel() if dispatch else None
    events = [
        unsaved(
            Event,
            id=uuid4(),
            name=d.name,
            properties=d.properties,
            occurred_at=d.occurred_at or now,
            received_at=now,
            idempotency_key=d.idempotency_key,
            source=source,
        )
        for d in drafts
    ]
    contacts, created, inserted = _contacts_and_events_store(
        drafts, events, now=now, source=source, channel=channel
    )
    if alone and created and membership().keeps_any():
        # A new contact may already be in a segment ("never did …"): checked once the statement
        # commits, under its lock, as any other change to a contact outside ingest is.
        membership().contacts_changed(contact_ids=[c.id for c in created], created=True)
    if not alone:
        _confirmations_request([c for c in created if c.confirmation_required and c.email], source=source)
        from contacts.lifecycle import contacts_upserted_emit  # contact.created/updated, rows only

        contacts_upserted_emit(contacts=contacts.values(), now=now)
    results: list[IngestResult | IngestError] = []
    for draft, event in zip(drafts, events, strict=True):
        event.contact_id = contacts[draft.user_id].id
        event._state.adding = False
        if event.id in inserted:
            results.append(IngestResult(event=event, contact=contacts[draft.user_id]))
        else:  # a concurrent request stored this key first: answer as it did
            first = Event.objects.select_related("contact").get(idempotency_key=event.idempotency_key)
            results.append(
                _conflict(event.idempotency_key or "")
                if first.contact.user_id != draft.user_id
                else IngestResult(
                    event=first, contact=first.contact, exited_run_ids=first.exited_run_ids, created=False
                )
            )
    stored = [r.event for r in results if isinstance(r, IngestResult) and r.created]
    if not alone:
        _apply_exit_rules(stored, results)
        conversions_apply(stored=stored)
        # Segment membership, for these contacts only, under the row locks the upsert took.
        property_keys: dict[UUID, set[str]] = {}
        for d in drafts:
            if d.contact_properties or d.email:
                keys = property_keys.setdefault(contacts[d.user_id].id, set())
                keys.update(d.contact_properties)
                if d.email:
                    keys.add("$email")
        membership().after_ingest(
            events=stored, property_keys=property_keys, created=[c.id for c in created], now=now
        )
        _collect(stored, now=now)
    if dispatch and stored and channel is None:
        dispatcher().after_ingest(
            event_ids=[e.id for e in stored],
            exited_run_ids=[run_id for e in stored for run_id in e.exited_run_ids],
        )
    return results


def _contacts_and_events_store(
    drafts: Sequence[EventDraft], events: Sequence[Event], *, now: datetime, source: str, channel: str | None
) -> tuple[dict[str, Contact], list[Contact], set[UUID]]:
    """One row per user id; several events of one user merge their contact fields in order.
    Returns the contacts by user id, those this call created, and the ids of the events stored
    (an event missing there lost its idempotency key to a concurrent request)."""
    merged: dict[str, tuple[str, dict[str, Any]]] = {}
    confirm: dict[str, bool] = {}
    for d in drafts:
        email, props = merged.get(d.user_id, ("", {}))
        merged[d.user_id] = (d.email or email, {**props, **d.contact_properties})
        confirm[d.user_id] = confirm.get(d.user_id, False) or _wants_confirmation(d)
    contacts: dict[str, Contact] = {}
    created: list[Contact] = []
    inserted: set[UUID] = set()
    for _ in range(3):
        wanted = {u: v for u, v in merged.items() if u not in contacts}
        if not wanted:
            return contacts, created, inserted
        rows = [
            {"id": str(uuid4()), "user_id": u, "email": email, "properties": props, "confirm": confirm[u]}
            for u, (email, props) in wanted.items()
        ]
        items = [
            {
                "id": str(e.id),
                "user_id": d.user_id,
                "name": e.name,
                "properties": e.properties,
                "occurred_at": e.occurred_at.isoformat(),
                "key": e.idempotency_key,
            }
            for d, e in zip(drafts, events, strict=True)
            if d.user_id in wanted
        ]
        with prepared_cursor() as cursor:
            cursor.execute(
                _INGEST_SQL,
                {
                    "contacts": _json(rows),
                    "events": _json(items),
                    "now": now,
                    "source": source,
                    "channel": channel or "",
                    "notify": channel is not None,
                },
            )
            for row in cursor.fetchall():
                values = list(row[:_CONTACT_WIDTH])
                is_new, stored_ids, _ = row[_CONTACT_WIDTH:]
                # Django's psycopg setup leaves jsonb undecoded (JSONField decodes it); so do we.
                if isinstance(values[_CONTACT_PROPERTIES], str):
                    values[_CONTACT_PROPERTIES] = json.loads(values[_CONTACT_PROPERTIES])
                contact = Contact.from_db(connection.alias, _CONTACT_ATTNAMES, values)
                contacts[contact.user_id] = contact
                inserted.update(stored_ids)
                if is_new:
                    created.append(contact)
        # A user id first stored by a concurrent transaction after this statement began is not in
        # its snapshot (nor were its events stored): the next round, with a new snapshot, reads it.
    missing = set(merged) - set(contacts)
    raise DatabaseError(f"could not upsert contacts {sorted(missing)[:3]}")


def _confirmations_request(contacts: list[Contact], *, source: str) -> None:
    """Double opt-in for contacts this call created: a ledger row each, and after commit the
    confirmation email (through the installed mailer, handed to a worker: nothing slow here)."""
    if not contacts:
        return
    from contacts.confirmation import confirmations_send_after_commit
    from contacts.models import ConsentChange

    rows = ConsentChange.objects.bulk_create(
        [
            ConsentChange(
                contact=c,
                email=c.email.strip().lower(),
                kind=ConsentChange.Kind.CONFIRMATION_REQUESTED,
                source=ConsentChange.Source.API,
                detail={"via": f"ingest:{source}"},
            )
            for c in contacts
        ]
    )
    confirmations_send_after_commit(request_ids=[r.pk for r in rows])


def _collect(stored: list[Event], *, now: datetime) -> None:
    """Digests collect their events here, in the ingest transaction (journeys/digests.py); an
    event nothing collects costs no statement."""
    collector = event_collector()
    names = collector.event_names()
    candidates = [e for e in stored if e.name in names]
    if candidates:
        collector.collect(events=candidates, now=now)


def _apply_exit_rules(stored: list[Event], results: list) -> None:
    rules = exit_rules()
    names = rules.event_names()
    candidates = [e for e in stored if e.name in names]
    if not candidates:
        return
    exits = rules.apply(events=candidates)
    for event in candidates:
        event.exited_run_ids = exits.get(event.id, [])
        if event.exited_run_ids:
            Event.objects.filter(pk=event.pk).update(exited_run_ids=event.exited_run_ids)
    for result in results:
        if isinstance(result, IngestResult) and result.created:
            result.exited_run_ids = list(result.event.exited_run_ids)
