"""The outbox: the seam between ingest and whatever runs journeys.

The event row is the outbox. Inside its transaction, ingest reaches beyond the contacts app only
through this module:
1. the installed exit rules say which live runs each new event ends (the journeys app installs
   them at start-up); an erasure ends a contact's live runs through them too;
2. the installed event collector gathers events into the digests that are open for them (the
   journeys app installs it; an event no digest journey is triggered by costs no statement);
3. the installed dispatcher hears which events were stored. The default announces them with a
   PostgreSQL NOTIFY, delivered at commit, that wakes the outbox relay; the journey test harness
   installs itself instead, to play the engine's part in-process.
So ingest never imports the engine, nor the journeys app.

The relay (`journeys.runtime.relay`) claims pending rows here, decides which ones the engine needs
(an event something is triggered by, or one a parked wait is waiting for), delivers those, and
marks every claimed row so it is never claimed again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from django.db import connection, transaction
from django.db.models import F, Func, Value
from django.utils import timezone

from contacts.models import AwaitedEvent, Event

logger = logging.getLogger(__name__)
OUTBOX_CHANNEL = "hogsend_outbox"


class Dispatcher(Protocol):
    def after_ingest(self, *, event_ids: Sequence[UUID], exited_run_ids: Sequence[UUID]) -> None: ...


class ExitRules(Protocol):
    def event_names(self) -> frozenset[str]:
        """Every event name some journey exits on (a cheap filter before any query)."""
        ...

    def apply(self, *, events: Sequence[Event]) -> dict[UUID, list[UUID]]:
        """Inside the ingest transaction: mark exited the live runs these events end; by event id."""
        ...

    def exit_contact(self, *, contact_id: UUID, reason: str) -> list[UUID]:
        """Inside the caller's transaction: mark exited every live run of the contact (an erasure)."""
        ...

    def stop_in_engine(self, *, run_ids: Sequence[UUID]) -> Any:
        """After commit, stop these exited runs in the engine; returns what became of the command
        (an object with `done` and `problem`, read once the caller's transaction committed)."""
        ...


class EventCollector(Protocol):
    def event_names(self) -> frozenset[str]:
        """Every event name something collects (a cheap filter before any query)."""
        ...

    def collect(self, *, events: Sequence[Event], now: datetime) -> None:
        """Inside the ingest transaction: collect these new events where they belong."""
        ...


class NoCollector:
    def event_names(self) -> frozenset[str]:
        return frozenset()

    def collect(self, *, events: Sequence[Event], now: datetime) -> None:
        return None


class NotifyRelay:
    """The default dispatcher: one NOTIFY per ingest transaction wakes the relays at commit."""

    def after_ingest(self, *, event_ids: Sequence[UUID], exited_run_ids: Sequence[UUID]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [OUTBOX_CHANNEL])


class NoExitRules:
    def event_names(self) -> frozenset[str]:
        return frozenset()

    def apply(self, *, events: Sequence[Event]) -> dict[UUID, list[UUID]]:
        return {}

    def exit_contact(self, *, contact_id: UUID, reason: str) -> list[UUID]:
        return []

    def stop_in_engine(self, *, run_ids: Sequence[UUID]) -> Any:
        return None


_dispatcher: Dispatcher = NotifyRelay()
_exit_rules: ExitRules = NoExitRules()
_collector: EventCollector = NoCollector()


def dispatcher() -> Dispatcher:
    return _dispatcher


def install_dispatcher(new: Dispatcher | None) -> Dispatcher:
    """Swap the dispatcher (the harness does); returns the previous one to restore later."""
    global _dispatcher
    previous, _dispatcher = _dispatcher, new or NotifyRelay()
    return previous


def notify_channel() -> str | None:
    """The channel to NOTIFY when the default dispatcher is installed (ingest then notifies in its
    own statement and spares a round trip); None when another dispatcher must hear each ingest."""
    return OUTBOX_CHANNEL if type(_dispatcher) is NotifyRelay else None


def exit_rules() -> ExitRules:
    return _exit_rules


def install_exit_rules(rules: ExitRules) -> None:
    global _exit_rules
    _exit_rules = rules


def event_collector() -> EventCollector:
    return _collector


def install_event_collector(collector: EventCollector) -> None:
    global _collector
    _collector = collector


# --- parked waits: which events the engine needs beyond triggers -------------------------------


def awaited_event_register(
    *, run_id: UUID, contact_id: UUID, name: str, since: datetime, until: datetime
) -> int:
    """Record that a run waits for `name` from this contact, and re-arm what already arrived.

    1. The row tells the relay to push this contact's `name` events until `until`.
    2. Events of that name stored since the wait began that the relay already passed over (it
       claimed them before this row existed) go back to pending, and the relays are woken. A relay
       holding such a row locks it, so the re-arm waits for its commit and sees `skipped`: an event
       arriving while the wait registers is never lost. The engine's wait considers events since
       the wait began, so a late push still resolves it.
    Returns how many events were re-armed.
    """
    with transaction.atomic():
        AwaitedEvent.objects.bulk_create(
            [AwaitedEvent(run_id=run_id, contact_id=contact_id, name=name, since=since, until=until)],
            ignore_conflicts=True,
        )
        rearmed = Event.objects.filter(
            contact_id=contact_id,
            name=name,
            received_at__gte=since,
            dispatch_state=Event.DispatchState.SKIPPED,
        ).update(dispatch_state=Event.DispatchState.PENDING)
        if rearmed:
            dispatcher().after_ingest(event_ids=[], exited_run_ids=[])
    return rearmed


def awaited_event_release(*, run_id: UUID, name: str) -> None:
    """The wait resolved (or timed out): the relay need not push for it any more."""
    AwaitedEvent.objects.filter(run_id=run_id, name=name).delete()


def awaited_events_expire(*, now: datetime | None = None) -> int:
    """Drop waits whose deadline passed (runs that exited mid-wait leave theirs behind)."""
    cutoff = (now or timezone.now()) - timedelta(minutes=5)
    return AwaitedEvent.objects.filter(until__lt=cutoff).delete()[0]


# --- the relay's unit of work -------------------------------------------------------------------


@dataclass
class OutboxItem:
    """One claimed event, in the shape the engine receives it."""

    id: UUID
    name: str
    contact_id: UUID
    payload: dict[str, Any]
    exited_run_ids: list[UUID] = field(default_factory=list)
    # A parked wait of this contact waits for this event: the engine must receive the event itself.
    awaited: bool = False


@dataclass
class RelayBatch:
    claimed: int = 0
    pushed: int = 0
    skipped: int = 0
    quarantined: int = 0
    cancelled_runs: list[UUID] = field(default_factory=list)
    error: str = ""


_CLAIM_SQL = """
SELECT e.id, e.name, e.contact_id, e.properties, extract(epoch FROM e.occurred_at)::float8,
       e.exited_run_ids, c.user_id, c.email
FROM contacts_event e JOIN contacts_contact c ON c.id = e.contact_id
WHERE e.dispatch_state = 'pending'
ORDER BY e.received_at
LIMIT %s
FOR NO KEY UPDATE OF e SKIP LOCKED
"""

_AWAITED_SQL = """
SELECT DISTINCT a.contact_id, a.name
FROM contacts_awaitedevent a
JOIN unnest(%s::uuid[], %s::text[]) AS claimed(contact_id, name)
  ON a.contact_id = claimed.contact_id AND a.name = claimed.name
WHERE a.until >= now() - interval '5 minutes'
"""


def outbox_relay_batch(
    *,
    wanted: Callable[[str], bool],
    deliver: Callable[[list[OutboxItem]], None],
    cancel: Callable[[list[UUID]], None],
    limit: int = 500,
) -> RelayBatch:
    """Claim up to `limit` pending events and settle each one; returns what happened.

    1. Claim rows with `FOR NO KEY UPDATE SKIP LOCKED`: two relays never hold the same event, and
       a run the push starts may reference its event at once (the foreign key's check takes a
       key-share lock, which a no-key claim lets through; `FOR UPDATE` would make every
       enrollment of the batch wait for the relay's commit).
    2. A row Python cannot read (a timestamp beyond datetime's range) is quarantined and logged,
       never a stall for the rows behind it.
    3. An event is delivered when `wanted(name)` (a trigger or a custom task listens) or a parked
       wait of its contact waits for that name; every other one is marked skipped.
    4. `deliver` runs while the rows are locked; if it raises, the transaction rolls back, every
       row stays pending and the attempt is counted, so an accepted event is never lost.
    5. Runs the events exited are cancelled in the engine once the rows are settled.
    """
    result = RelayBatch()
    rows: list[tuple] = []
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_CLAIM_SQL, [limit])
                rows = cursor.fetchall()
            if not rows:
                return result
            result.claimed = len(rows)
            items, bad = _outbox_items(rows)
            awaited = _awaited_pairs(items) if items else set()
            for item in items:
                item.awaited = (item.contact_id, item.name) in awaited
            push = [i for i in items if wanted(i.name) or i.awaited]
            skip = [i for i in items if i not in push]
            if push:
                deliver(push)
            now = timezone.now()
            _mark(push, Event.DispatchState.DISPATCHED, now)
            _mark(skip, Event.DispatchState.SKIPPED, now)
            if bad:
                Event.objects.filter(pk__in=bad).update(
                    dispatch_state=Event.DispatchState.QUARANTINED, dispatched_at=now
                )
                logger.error("outbox: quarantined %d unreadable events: %s", len(bad), bad)
            result.pushed, result.skipped, result.quarantined = len(push), len(skip), len(bad)
            result.cancelled_runs = [run_id for i in items for run_id in i.exited_run_ids]
    except Exception as error:
        ids = [row[0] for row in rows]
        if ids:
            Event.objects.filter(pk__in=ids).update(dispatch_attempts=F("dispatch_attempts") + 1)
        result.error = f"{type(error).__name__}: {error}"
        logger.warning("outbox: delivery of %d events failed, will retry: %s", len(ids), result.error)
        return result
    if result.cancelled_runs:
        cancel(result.cancelled_runs)
    return result


def engine_payload(
    *,
    event_id: UUID,
    name: str,
    contact_id: UUID,
    user_id: str,
    user_email: str,
    properties: dict[str, Any],
    occurred_at: datetime,
) -> dict[str, Any]:
    """The JSON an event carries to the engine and into journey and task inputs: the one builder,
    for the relay's push and the journey harness alike."""
    return {
        "event_id": str(event_id),
        "event": name,
        "contact_id": str(contact_id),
        "user_id": user_id,
        "user_email": user_email,
        "properties": properties,
        "occurred_at": occurred_at.isoformat(),
    }


def event_engine_payload(event: Event) -> dict[str, Any]:
    """`engine_payload` of a stored event (its contact read through the relation)."""
    return engine_payload(
        event_id=event.id,
        name=event.name,
        contact_id=event.contact_id,
        user_id=event.contact.user_id,
        user_email=event.contact.email,
        properties=event.properties,
        occurred_at=event.occurred_at,
    )


def _outbox_items(rows: Iterable[tuple]) -> tuple[list[OutboxItem], list[UUID]]:
    items, bad = [], []
    for event_id, name, contact_id, properties, epoch, exited, user_id, email in rows:
        try:
            occurred_at = datetime.fromtimestamp(epoch, tz=UTC)
        except (OverflowError, OSError, ValueError):
            bad.append(event_id)
            continue
        if isinstance(properties, str):  # jsonb arrives undecoded through Django's connection
            properties = json.loads(properties)
        items.append(
            OutboxItem(
                id=event_id,
                name=name,
                contact_id=contact_id,
                exited_run_ids=list(exited or []),
                payload=engine_payload(
                    event_id=event_id,
                    name=name,
                    contact_id=contact_id,
                    user_id=user_id,
                    user_email=email,
                    properties=properties,
                    occurred_at=occurred_at,
                ),
            )
        )
    return items, bad


def _awaited_pairs(items: Sequence[OutboxItem]) -> set[tuple[UUID, str]]:
    with connection.cursor() as cursor:
        cursor.execute(_AWAITED_SQL, [[i.contact_id for i in items], [i.name for i in items]])
        return {(contact_id, name) for contact_id, name in cursor.fetchall()}


def _mark(items: Sequence[OutboxItem], state: str, now: datetime) -> None:
    if items:
        Event.objects.filter(pk__in=[i.id for i in items]).update(dispatch_state=state, dispatched_at=now)


# --- reconciliation: pushed events nothing decided ----------------------------------------------


def events_redispatch(*, event_ids: Sequence[UUID], now: datetime | None = None) -> int:
    """Put pushed events back in the outbox (the relays push them again) and count the attempt.

    Only rows still `dispatched` move, so a concurrent claim or a second reconciler never pushes
    one twice for the same decision. The dispatcher hears them after commit, as at ingest.
    """
    if not event_ids:
        return 0
    with transaction.atomic():
        moved = list(
            Event.objects.filter(pk__in=list(event_ids), dispatch_state=Event.DispatchState.DISPATCHED)
            .values_list("pk", flat=True)
            .select_for_update(skip_locked=True)
        )
        Event.objects.filter(pk__in=moved).update(
            dispatch_state=Event.DispatchState.PENDING,
            redispatches=F("redispatches") + 1,
            redispatched_at=now or timezone.now(),
        )
        if moved:
            dispatcher().after_ingest(event_ids=moved, exited_run_ids=[])
    return len(moved)


def events_unsettled(*, event_ids: Sequence[UUID]) -> int:
    """Give up on pushed events that were re-pushed as often as allowed: state `unsettled`."""
    return Event.objects.filter(pk__in=list(event_ids), dispatch_state=Event.DispatchState.DISPATCHED).update(
        dispatch_state=Event.DispatchState.UNSETTLED
    )


def event_task_done(*, event_id: UUID, task: str) -> None:
    """Record that a custom task had its effect for this event (a re-push then skips it)."""
    Event.objects.filter(pk=event_id).exclude(tasks_done__contains=[task]).update(
        tasks_done=Func(F("tasks_done"), Value(task), function="array_append")
    )


def event_task_is_done(*, event_id: UUID, task: str) -> bool:
    return Event.objects.filter(pk=event_id, tasks_done__contains=[task]).exists()
