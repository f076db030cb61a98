"""Keeping membership: one set-based statement per dependency level, for exactly the (segment,
contact) pairs that may have changed, and the `segment.entered` / `segment.exited` events.

Exactly-once rests on two things:
1. the contacts evaluated are locked (ingest's upsert holds their rows until commit; every other
   caller locks them first, in user-id order as the upsert does), so evaluations of one contact
   happen one after another and each statement sees what the previous one committed;
2. the statement's INSERT … ON CONFLICT DO NOTHING and DELETE … RETURNING report only the rows
   they really changed; an event is emitted for those rows and no others, in the same transaction.
"""

from __future__ import annotations

import contextvars
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from audiences.conditions import bind_now
from audiences.segments import Segment, registry
from contacts.ingest import EventDraft, events_ingest
from contacts.models import Event
from contacts.prepared import prepared_cursor
from journeys.shipped.constants import Events

logger = logging.getLogger(__name__)
# Segment events go through ingest, which re-checks segments that read them: a bound on how deep
# that can go, so a segment defined on its own enter/exit events cannot loop.
MAX_DEPTH = 3
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("segment_depth", default=0)


@dataclass(frozen=True)
class Change:
    entered: bool
    segment_id: str
    contact_id: UUID
    user_id: str


Pairs = Mapping[str, Iterable[UUID]]  # segment id -> contact ids to re-check


@lru_cache(maxsize=256)
def _statement_text(segments: tuple[Segment, ...], one_contact: bool) -> str:
    """One statement for these segments: which pairs qualify, and the changes applied. The text
    depends only on the segments, so it can be prepared; for one contact (an ingested event) it
    names the contact as a scalar, so once prepared PostgreSQL's estimate for the generic plan is
    the custom plan's and it stops planning the statement after its fifth run."""
    contact = "c.id = %s::uuid" if one_contact else "c.id = ANY(%s::uuid[])"
    selects = [
        "SELECT %s::text AS segment_id, c.id AS contact_id, "
        f"(c.erased_at IS NULL AND ({segment.sql_text})) AS qualifies, "
        "EXISTS (SELECT 1 FROM audiences_segmentmembership m "
        f"WHERE m.segment_id = %s AND m.contact_id = c.id) AS member FROM contacts_contact c WHERE {contact}"
        for segment in segments
    ]
    return f"""
WITH q AS MATERIALIZED ({" UNION ALL ".join(selects)}),
ins AS (
    INSERT INTO audiences_segmentmembership (segment_id, contact_id, entered_at)
    SELECT segment_id, contact_id, %s FROM q WHERE qualifies AND NOT member
    ON CONFLICT (segment_id, contact_id) DO NOTHING
    RETURNING segment_id, contact_id
),
del AS (
    DELETE FROM audiences_segmentmembership m USING q
    WHERE member AND NOT qualifies AND m.segment_id = q.segment_id AND m.contact_id = q.contact_id
    RETURNING m.segment_id, m.contact_id
)
SELECT x.entered, x.segment_id, x.contact_id, c.user_id
FROM (SELECT true AS entered, segment_id, contact_id FROM ins
      UNION ALL SELECT false, segment_id, contact_id FROM del) x
JOIN contacts_contact c ON c.id = x.contact_id
"""


def _evaluate(segments: Sequence[Segment], pairs: Pairs, now: datetime) -> list[Change]:
    """Evaluate these segments for their contacts and apply what changed, in one statement; an
    evaluation that changes nothing writes nothing."""
    contacts = [list(pairs[segment.id]) for segment in segments]
    one_contact = all(len(ids) == 1 for ids in contacts)
    params: list = []
    for segment, ids in zip(segments, contacts, strict=True):
        params += [
            segment.id,
            *bind_now(list(segment.sql_params), now),
            segment.id,
            ids[0] if one_contact else ids,
        ]
    params.append(now)
    with prepared_cursor() as cursor:  # planned once per connection: planning costs more than running it
        cursor.execute(_statement_text(tuple(segments), one_contact), params)
        return [Change(*row) for row in cursor.fetchall()]


def memberships_apply(*, pairs: Pairs, now: datetime | None = None, announce: bool = True) -> list[Change]:
    """Re-check these (segment, contacts) pairs, level by level, and apply what changed.

    A change to a segment re-checks, for the same contacts, the segments that read it. The caller
    holds the contacts' rows locked (see the module's docstring) inside its transaction; the
    events are emitted in that transaction too.
    """
    now = now or timezone.now()
    todo: dict[str, set[UUID]] = defaultdict(set)
    for segment_id, ids in pairs.items():
        todo[segment_id].update(ids)
    changes: list[Change] = []
    while todo:
        level = min(registry.level(s) for s in todo)
        batch = [s for s in registry.in_dependency_order() if s.id in todo and registry.level(s.id) == level]
        if not batch:  # segment ids no module defines any more
            break
        current = {s.id: todo.pop(s.id) for s in batch}
        for segment_id in [s for s in todo if registry.get(s) is None]:
            todo.pop(segment_id)
        found = _evaluate(batch, current, now)
        changes += found
        changed_by_segment: dict[str, set[UUID]] = defaultdict(set)
        for change in found:
            changed_by_segment[change.segment_id].add(change.contact_id)
        for dependent in registry.dependents(changed_by_segment):
            for ref in dependent.references.segments & changed_by_segment.keys():
                todo[dependent.id].update(changed_by_segment[ref])
    if announce and changes:
        _announce(changes, now=now)
    return changes


def _announce(changes: Sequence[Change], *, now: datetime) -> None:
    """`segment.entered` / `segment.exited` through the normal ingest path (journeys can start and
    exit on them; the relay and destinations see them), in the caller's transaction."""
    depth = _depth.get()
    if depth >= MAX_DEPTH:
        logger.warning("segments: %d membership events not announced (depth %d)", len(changes), depth)
        return
    drafts = [
        EventDraft(
            name=Events.SEGMENT_ENTERED if change.entered else Events.SEGMENT_EXITED,
            user_id=change.user_id,
            properties={"segment_id": change.segment_id, "segment_name": _name(change.segment_id)},
            occurred_at=now,
        )
        for change in changes
    ]
    token = _depth.set(depth + 1)
    try:
        for outcome in events_ingest(drafts=drafts, source=Event.Source.SYSTEM):
            if isinstance(outcome, Exception):
                raise outcome
    finally:
        _depth.reset(token)
    for listener in _listeners.values():
        listener(changes=changes, now=now)


# Who else hears of membership changes, in the same transaction (integrations installs the
# delivery of segment.entered / segment.exited to destinations): listener(changes=..., now=...).
MembershipListener = Callable[..., None]
_listeners: dict[str, MembershipListener] = {}


def membership_listener_install(*, name: str, listener: MembershipListener) -> None:
    _listeners[name] = listener


def _name(segment_id: str) -> str:
    segment = registry.get(segment_id)
    return segment.name if segment else segment_id


def contacts_lock(contact_ids: Iterable[UUID]) -> list[UUID]:
    """Lock the contacts' rows for this transaction in ingest's order (user id); returns those
    that exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM contacts_contact WHERE id = ANY(%s::uuid[]) ORDER BY user_id FOR NO KEY UPDATE",
            [list(contact_ids)],
        )
        return [row[0] for row in cursor.fetchall()]


class LiveMembership:
    """The keeper ingest calls (installed by `audiences.apps`): re-checks only the segments that
    read what changed, for the contacts it changed."""

    def keeps_any(self) -> bool:
        return bool(registry.all())

    def watches(self, *, event_name: str, property_keys: Iterable[str] = ()) -> bool:
        return registry.reads_event(event_name) or any(registry.reads_property(k) for k in property_keys)

    def after_ingest(
        self,
        *,
        events: Sequence[Event],
        property_keys: Mapping[UUID, Iterable[str]],
        created: Iterable[UUID],
        now: datetime,
    ) -> None:
        segments = registry.all()
        if not segments:
            return
        pairs: dict[str, set[UUID]] = defaultdict(set)
        created = list(created)
        if created:  # a new contact may already be in any segment ("never did …")
            for segment in segments:
                pairs[segment.id].update(created)
        names: dict[UUID, set[str]] = defaultdict(set)
        for event in events:
            names[event.contact_id].add(event.name)
        for contact_id in names.keys() | property_keys.keys():
            for segment in registry.watching(
                event_names=names.get(contact_id, ()), property_keys=property_keys.get(contact_id, ())
            ):
                pairs[segment.id].add(contact_id)
        if pairs:
            # The moment is read now, under the contacts' locks, not when the ingest began: one
            # contact's enter and exit events then occur in the order they were decided.
            memberships_apply(pairs=pairs)

    def contacts_changed(
        self,
        *,
        contact_ids: Iterable[UUID],
        property_keys: Iterable[str] = (),
        consent: bool = False,
        created: bool = False,
    ) -> None:
        keys = set(property_keys)
        segments = [
            s
            for s in registry.all()
            if created or (consent and s.references.consent) or s.watches(property_keys=keys)
        ]
        ids = list(contact_ids)
        if not segments or not ids:
            return
        pairs = {s.id: set(ids) for s in segments}

        def recheck() -> None:
            with transaction.atomic():
                locked = contacts_lock(ids)
                if locked:
                    memberships_apply(pairs={s: set(locked) for s in pairs})

        # After the change commits, in a transaction of its own that locks the contacts: whatever
        # order the caller took its locks in, this cannot deadlock with an ingest.
        transaction.on_commit(recheck)
