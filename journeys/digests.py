"""Digests: a contact's matching events over a window, gathered into one run and one email.

A digest is declared on the journey (`define_journey(..., digest=Digest("comments", window=hours(1)))`)
because ingest must decide where each event goes before any run executes, from the definitions in
memory: an event no digest journey is triggered by costs ingest no statement at all.

The life of a digest:
1. **Open / collect (ingest, one statement per call).** Each new event a digest journey is
   triggered by (its `where` met) is upserted into that journey's open digest for the contact and
   key. A partial unique index allows one open digest per (journey, contact, key), so of two
   racing events one opens it and the other is collected into it (`ON CONFLICT DO UPDATE` waits
   for the first and returns its row). The first event is the digest's opener.
2. **Start.** Every event still reaches the journey's task. The opener enrolls a run as any
   trigger does; an event that was collected is recorded as a `digest_collected` skip and starts
   nothing.
3. **Close (`ctx.digest`).** The run binds the digest its trigger opened, sleeps durably until
   the window ends, then closes it (a conditional UPDATE under the digest's row lock, so an event
   racing the close is either in this digest or opens the next one, never both or neither) and
   reads its items. Closing and the resume are one transaction, recorded as the run's step: a
   replay returns the same items, and the send that follows is a recorded step with an
   idempotency key, so one digest is one email across crashes and replays.
4. **End.** When a digest journey's run ends, a digest it still held open is discarded (an exit
   mid-window sends nothing), and a digest that opened while the run was still live (its opener
   was skipped as `already_active`) gets its opener pushed again, so it starts its own run.
5. **Sweep.** A digest whose opener never enrolled (its start failed until the reconciler gave
   up, or the event is gone) would collect every later event and start nothing: Celery beat
   (`journeys.digests_sweep`) hands it on to the oldest event it collected, or discards it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.db import connection, transaction
from django.utils import timezone

from contacts.models import Event
from contacts.outbox import dispatcher, events_redispatch
from journeys.conditions import all_match
from journeys.definition import Journey
from journeys.durations import journey_time
from journeys.models import Digest, EnrollmentSkip, JourneyRun, RunStep
from journeys.registry import registry
from journeys.services import RunNotLive
from journeys.steps import run_park, run_resume

OPENER = "opener"
COLLECTED = "collected"
NOT_COLLECTED = "not_collected"
logger = logging.getLogger(__name__)


class DigestNotFound(RuntimeError):
    """A digest journey's run found no digest its trigger opened (a code or data error)."""


def digest_journeys() -> list[Journey]:
    return [j for j in registry.loaded() if j.digest is not None]


# --- 1. ingest: open or collect -----------------------------------------------------------------

_COLLECT_SQL = """
WITH groups AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(journeys)s::text[], %(contacts)s::uuid[], %(keys)s::text[],
                         %(openers)s::uuid[], %(closes)s::timestamptz[], %(counts)s::int[])
        AS g(id, journey_id, contact_id, key, opener, closes_at, n)
), digests AS (
    INSERT INTO journeys_digest AS d
        (id, journey_id, contact_id, key, status, opened_by_id, opened_at, closes_at, item_count)
    SELECT id, journey_id, contact_id, key, 'open', opener, %(now)s, closes_at, n FROM groups
    ORDER BY journey_id, contact_id, key
    ON CONFLICT (journey_id, contact_id, key) WHERE status = 'open'
    DO UPDATE SET item_count = d.item_count + EXCLUDED.item_count
    RETURNING d.id, d.journey_id, d.contact_id, d.key
), items AS (
    SELECT * FROM unnest(%(item_events)s::uuid[], %(item_journeys)s::text[], %(item_contacts)s::uuid[],
                         %(item_keys)s::text[]) AS i(event_id, journey_id, contact_id, key)
)
INSERT INTO journeys_digestitem (digest_id, event_id, journey_id)
SELECT d.id, i.event_id, d.journey_id FROM items i JOIN digests d USING (journey_id, contact_id, key)
ON CONFLICT DO NOTHING
"""


class JourneyDigests:
    """Installed into `contacts.outbox` at start-up: ingest hands it the events digests collect."""

    def event_names(self) -> frozenset[str]:
        return frozenset(j.trigger.event for j in digest_journeys())

    def collect(self, *, events: Sequence[Event], now: datetime) -> None:
        digests_collect(events=events, now=now)


def digests_collect(*, events: Sequence[Event], now: datetime) -> int:
    """Open or extend the open digests these events belong to, in one statement; returns how many
    events were collected. Events of one contact in one call share a digest (the earliest opens it)."""
    groups: dict[tuple[str, UUID, str], list[Event]] = {}
    windows: dict[str, timedelta] = {}
    for journey in digest_journeys():
        assert journey.digest is not None
        windows[journey.id] = journey_time(journey.digest.window)
        for event in events:
            if journey.trigger.matches(event.name, event.properties):
                groups.setdefault((journey.id, event.contact_id, journey.digest.key), []).append(event)
    if not groups:
        return 0
    order = sorted(groups, key=lambda g: (g[0], str(g[1]), g[2]))
    openers = [min(groups[g], key=lambda e: (e.occurred_at, str(e.id))) for g in order]
    items = [(g, e) for g in order for e in groups[g]]
    with connection.cursor() as cursor:
        cursor.execute(
            _COLLECT_SQL,
            {
                "ids": [uuid4() for _ in order],
                "journeys": [g[0] for g in order],
                "contacts": [g[1] for g in order],
                "keys": [g[2] for g in order],
                "openers": [e.id for e in openers],
                "closes": [now + windows[g[0]] for g in order],
                "counts": [len(groups[g]) for g in order],
                "now": now,
                "item_events": [e.id for _, e in items],
                "item_journeys": [g[0] for g, _ in items],
                "item_contacts": [g[1] for g, _ in items],
                "item_keys": [g[2] for g, _ in items],
            },
        )
        return cursor.rowcount


# --- 2. start: the opener enrolls, a collected event is decided without a run ---------------------

_ROLE_SQL = f"""
WITH item AS (
    SELECT d.opened_by_id = %(event)s AS opener, d.status, d.run_id
    FROM journeys_digestitem i JOIN journeys_digest d ON d.id = i.digest_id
    WHERE i.event_id = %(event)s AND i.journey_id = %(journey)s
), role AS (
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM item) THEN '{NOT_COLLECTED}'
        WHEN (SELECT opener AND (status <> 'discarded' OR run_id IS NOT NULL) FROM item) THEN '{OPENER}'
        ELSE '{COLLECTED}' END AS role
), skip AS (
    INSERT INTO journeys_enrollmentskip (journey_id, contact_id, trigger_event_id, reason, created_at)
    SELECT %(journey)s, %(contact)s, %(event)s,
           CASE role WHEN '{COLLECTED}' THEN %(collected)s ELSE %(not_collected)s END, %(now)s
    FROM role
    WHERE (role = '{COLLECTED}' OR (role = '{NOT_COLLECTED}' AND %(where_met)s))
      AND NOT EXISTS (SELECT 1 FROM journeys_enrollmentskip s
                      WHERE s.trigger_event_id = %(event)s AND s.journey_id = %(journey)s)
)
SELECT role FROM role
"""


def digest_trigger_role(
    *, journey: Journey, contact_id: UUID, event_id: UUID, properties: dict[str, Any], now: datetime
) -> str:
    """What a digest journey's trigger event is to its digests, in one statement: the `opener`
    (it enrolls as usual), `collected` into a digest another event opened (recorded as a
    `digest_collected` skip: decided, nothing starts), or `not_collected` (no digest holds it: it
    was ingested before the journey was loaded; recorded as a `not_collected` skip unless its
    trigger conditions fail, which enrollment records as usual)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ROLE_SQL,
            {
                "journey": journey.id,
                "contact": contact_id,
                "event": event_id,
                "now": now,
                "where_met": all_match(journey.trigger.where, properties),
                "collected": EnrollmentSkip.Reason.DIGEST_COLLECTED,
                "not_collected": EnrollmentSkip.Reason.NOT_COLLECTED,
            },
        )
        return cursor.fetchone()[0]


def digest_discard_unstarted(*, journey_id: str, opened_by: UUID) -> int:
    """The opener was skipped by a guard (disabled, unsubscribed, an entry limit): its digest will
    never have a run, so it stops collecting; the next event opens a fresh one."""
    return Digest.objects.filter(
        journey_id=journey_id, opened_by_id=opened_by, status=Digest.Status.OPEN, run__isnull=True
    ).update(status=Digest.Status.DISCARDED, closed_at=timezone.now())


# --- 3. ctx.digest: bind, wait, close ----------------------------------------------------------

_BIND_SQL = """
UPDATE journeys_digest d SET run_id = r.id
FROM journeys_journeyrun r
WHERE r.id = %(run)s AND d.journey_id = r.journey_id AND d.contact_id = r.contact_id
  AND d.key = %(key)s AND d.opened_by_id = r.trigger_event_id
  AND (d.run_id IS NULL OR d.run_id = r.id) AND d.status IN ('open', 'closed')
RETURNING d.id, d.opened_at, d.closes_at
"""


def digest_park(*, run_id: UUID, seq: int, key: str, label: str) -> dict[str, Any]:
    """Bind the digest the run's trigger opened and park the run until its window closes (one
    transaction); returns the step's result: the digest, its window, and how long to sleep."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_BIND_SQL, {"run": run_id, "key": key})
            row = cursor.fetchone()
        if row is None:
            status = JourneyRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
            if status not in JourneyRun.LIVE_STATUSES:
                raise RunNotLive(run_id, status or "gone")
            raise DigestNotFound(f"run {run_id} has no digest {key!r} opened by its trigger event")
        digest_id, opened_at, closes_at = row
        remaining = max((closes_at - timezone.now()).total_seconds(), 0.0)
        result = {
            "digest_id": str(digest_id),
            "key": key,
            "opened_at": opened_at.isoformat(),
            "until": closes_at.isoformat(),
            "sleep_seconds": remaining,
        }
        run_park(
            run_id=run_id, seq=seq, kind=RunStep.Kind.DIGEST, label=label, until=closes_at, result=result
        )
    return result


_CLOSE_SQL = f"""
UPDATE journeys_digest SET status = 'closed', closed_at = %(now)s
WHERE id = %(digest)s AND status = 'open' AND run_id = %(run)s
  AND EXISTS (SELECT 1 FROM journeys_journeyrun r WHERE r.id = %(run)s
              AND r.status IN ({JourneyRun.LIVE_STATUSES_SQL}))
"""

_ITEMS_SQL = """
SELECT e.id, e.occurred_at, e.properties, count(*) OVER (), d.closed_at
FROM journeys_digestitem i
JOIN journeys_digest d ON d.id = i.digest_id
JOIN contacts_event e ON e.id = i.event_id
WHERE i.digest_id = %(digest)s
ORDER BY e.occurred_at, e.received_at, i.id
LIMIT %(limit)s
"""


def digest_close(*, run_id: UUID, seq: int, parked: dict[str, Any], max_items: int) -> dict[str, Any]:
    """Close the digest and record its items as the step's outcome, in one transaction.

    1. A conditional UPDATE closes it (only while open and the run is live). It waits for an
       ingest collecting into it to commit; an ingest that comes after finds no open digest and
       opens the next one.
    2. Its items are read in a fresh snapshot (every event collected before the close), oldest
       first, at most `max_items`, with the count of all of them. A closed digest never changes,
       so a replay after a crash between here and the record reads the same list.
    3. The run resumes with that outcome recorded (refused if the run ended: nothing is sent).
    """
    digest_id = parked["digest_id"]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLOSE_SQL, {"digest": digest_id, "run": run_id, "now": timezone.now()})
            cursor.execute(_ITEMS_SQL, {"digest": digest_id, "limit": max_items})
            rows = cursor.fetchall()
        items = []
        for event_id, occurred_at, properties, _, _ in rows:
            if isinstance(properties, str):  # jsonb arrives undecoded through Django's connection
                properties = json.loads(properties)
            items.append(
                {"event_id": str(event_id), "occurred_at": occurred_at.isoformat(), "properties": properties}
            )
        closed_at = rows[0][4] if rows else None
        outcome = {
            **parked,
            "items": items,
            "count": rows[0][3] if rows else 0,
            "closed_at": closed_at.isoformat() if closed_at else timezone.now().isoformat(),
        }
        run_resume(run_id=run_id, seq=seq, result=outcome)
    return outcome


# --- 4. a digest journey's run ended -------------------------------------------------------------

_RUN_ENDED_SQL = """
WITH run AS (
    SELECT id, journey_id, contact_id, trigger_event_id FROM journeys_journeyrun
    WHERE id = %(run)s AND journey_id = ANY(%(journeys)s::text[])
), discarded AS (
    UPDATE journeys_digest d SET status = 'discarded', closed_at = %(now)s
    FROM run
    WHERE d.status = 'open' AND d.journey_id = run.journey_id AND d.contact_id = run.contact_id
      AND (d.run_id = run.id OR (d.run_id IS NULL AND d.opened_by_id = run.trigger_event_id))
    RETURNING d.id
)
SELECT d.opened_by_id FROM journeys_digest d JOIN run
  ON d.journey_id = run.journey_id AND d.contact_id = run.contact_id
WHERE d.status = 'open' AND d.run_id IS NULL AND d.opened_by_id IS NOT NULL
  AND d.opened_by_id IS DISTINCT FROM run.trigger_event_id
  AND d.id NOT IN (SELECT id FROM discarded)
"""


def digest_run_ended(*, run_id: UUID) -> list[UUID]:
    """In the transaction that ended a run: if it is a digest journey's, discard the digest it
    still held open, and push again the opener of a digest that opened while it was live (its
    enrollment met this run and was skipped as `already_active`), so that digest gets its run.
    Returns the openers pushed again. Costs nothing while no digest journey is loaded."""
    journeys = [j.id for j in digest_journeys()]
    if not journeys:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_RUN_ENDED_SQL, {"run": run_id, "journeys": journeys, "now": timezone.now()})
        openers = [row[0] for row in cursor.fetchall()]
    if openers:
        # A pushed opener goes back to the outbox; one still pending is either on its way (the
        # relay pushes it) or was routed in-process (the journey harness): announce it again.
        pending = list(
            Event.objects.filter(pk__in=openers, dispatch_state=Event.DispatchState.PENDING).values_list(
                "pk", flat=True
            )
        )
        events_redispatch(event_ids=openers)
        if pending:
            dispatcher().after_ingest(event_ids=pending, exited_run_ids=[])
    return openers


# --- 5. the sweep: a digest whose opener never enrolled ----------------------------------------

# Open digests no run holds, past their window by the grace, whose opener will never enroll: it
# is gone (retention), was set aside as `unsettled` (the reconciler re-pushed it as often as
# allowed), or was decided without a run (a guard's skip, or a run that ended before it bound
# the digest). An opener still on its way (pending, or pushed and not yet given up on) is left
# to the relay and the reconciler. For each, the oldest other event it collected, if any.
_STRANDED_SQL = """
SELECT d.id, d.journey_id,
       (SELECT i.event_id FROM journeys_digestitem i JOIN contacts_event e ON e.id = i.event_id
        WHERE i.digest_id = d.id AND i.event_id IS DISTINCT FROM d.opened_by_id
          AND e.dispatch_state <> 'unsettled'
        ORDER BY e.occurred_at, e.received_at, i.id LIMIT 1) AS next_opener
FROM journeys_digest d
LEFT JOIN contacts_event o ON o.id = d.opened_by_id
WHERE d.status = 'open' AND d.run_id IS NULL AND d.closes_at < %(before)s
  AND d.journey_id = ANY(%(journeys)s::text[])
  AND (o.id IS NULL OR o.dispatch_state = 'unsettled'
       OR EXISTS (SELECT 1 FROM journeys_enrollmentskip s
                  WHERE s.trigger_event_id = o.id AND s.journey_id = d.journey_id)
       OR EXISTS (SELECT 1 FROM journeys_journeyrun r
                  WHERE r.trigger_event_id = o.id AND r.journey_id = d.journey_id
                    AND r.status NOT IN ('active', 'waiting')))
ORDER BY d.closes_at
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
"""


@dataclass
class DigestSweep:
    handed_on: list[UUID] = field(default_factory=list)  # digests given a new opener
    discarded: list[UUID] = field(default_factory=list)  # digests with nothing left to start


def digests_sweep(
    *, now: datetime | None = None, grace: timedelta | None = None, limit: int = 1000
) -> DigestSweep:
    """Close or hand on the open digests whose opener never enrolled (its run failed to start).

    1. Lock the stranded digests (above), past their window by `grace`
       (`DIGEST_START_GRACE_SECONDS`), so a start still under way is not raced.
    2. A digest that collected other events is handed on: the oldest becomes its opener, its
       `digest_collected` skip is dropped (so the reconciler treats it as undecided and pushes it
       again if this push is lost too) and it is pushed again; its run binds the digest, which is
       past its window, so it closes at once and sends every event collected.
    3. A digest with none is discarded: nothing was collected that a run could send, and the
       contact's next event opens a fresh digest instead of being collected into this one.
    """
    from django.conf import settings

    now = now or timezone.now()
    grace = grace if grace is not None else timedelta(seconds=settings.DIGEST_START_GRACE_SECONDS)
    journeys = [j.id for j in digest_journeys()]
    result = DigestSweep()
    if not journeys:
        return result
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_STRANDED_SQL, {"before": now - grace, "journeys": journeys, "limit": limit})
            rows = cursor.fetchall()
        handed = [(digest_id, journey_id, nxt) for digest_id, journey_id, nxt in rows if nxt is not None]
        result.discarded = [digest_id for digest_id, _, nxt in rows if nxt is None]
        for digest_id, journey_id, next_opener in handed:
            Digest.objects.filter(pk=digest_id).update(opened_by_id=next_opener)
            EnrollmentSkip.objects.filter(
                journey_id=journey_id,
                trigger_event_id=next_opener,
                reason=EnrollmentSkip.Reason.DIGEST_COLLECTED,
            ).delete()
            result.handed_on.append(digest_id)
        Digest.objects.filter(pk__in=result.discarded).update(status=Digest.Status.DISCARDED, closed_at=now)
        openers = [nxt for _, _, nxt in handed]
        # Pushed before: back to the outbox. Still pending: on its way, or routed in-process.
        pending = list(
            Event.objects.filter(pk__in=openers, dispatch_state=Event.DispatchState.PENDING).values_list(
                "pk", flat=True
            )
        )
        events_redispatch(event_ids=openers, now=now)
        if pending:
            dispatcher().after_ingest(event_ids=pending, exited_run_ids=[])
    if rows:
        logger.warning(
            "digests: %d digests whose opener never enrolled: %d handed on, %d discarded",
            len(rows),
            len(result.handed_on),
            len(result.discarded),
        )
    return result


# --- reads ------------------------------------------------------------------------------------------


def run_digests(*, run: JourneyRun, limit: int = 100) -> list[dict[str, Any]]:
    """The digests of a run, for its Studio page: each with its window, status and the events it
    collected so far (oldest first, at most `limit`). A digest not yet bound to the run is the
    one its trigger opened."""
    from django.db.models import Q

    mine = Q(run=run)
    if run.trigger_event_id:
        mine |= Q(opened_by_id=run.trigger_event_id, journey_id=run.journey_id)
    views = []
    for digest in Digest.objects.filter(mine).order_by("opened_at"):
        items = (
            Event.objects.filter(pk__in=digest.items.values("event_id"))
            .order_by("occurred_at", "received_at")
            .values("id", "name", "occurred_at", "properties")[:limit]
        )
        views.append({"digest": digest, "items": list(items)})
    return views
