"""Writes for journey runs and their step log. Sync, keyword-only; async callers wrap them."""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from contacts.ingest import event_ingest
from contacts.models import Contact, Event
from contacts.prepared import prepared_cursor
from contacts.rows import unsaved
from journeys.conditions import all_match
from journeys.definition import EntryLimit, Journey
from journeys.durations import journey_time
from journeys.experiments import conversion_at_entry, is_held_out, run_in_control_group
from journeys.journey_map import map_end
from journeys.models import EnrollmentSkip, JourneyRun, JourneySetting
from journeys.versions import journey_version

Status = JourneyRun.Status
Skip = EnrollmentSkip.Reason


class InvalidRunTransition(Exception):
    """A run was asked to move between statuses the lifecycle does not allow."""


class RunNotLive(Exception):
    """The run ended (exited, failed, completed) while the journey was still going."""

    def __init__(self, run_id: UUID, status: str) -> None:
        super().__init__(f"run {run_id} is {status}")
        self.run_id = run_id
        self.status = status


@dataclass(frozen=True)
class Enrollment:
    run: JourneyRun | None
    skip_reason: str | None = None
    resumed: bool = False


def journey_is_enabled(*, journey: Journey) -> bool:
    override = JourneySetting.objects.filter(journey_id=journey.id).values_list("enabled", flat=True).first()
    return journey.enabled if override is None else override


def journey_enroll(
    *,
    journey: Journey,
    contact_id: UUID,
    trigger_event_id: UUID | None,
    properties: dict[str, Any],
    engine_run_id: str | None,
    now: datetime | None = None,
) -> Enrollment:
    """Run the enrollment guards in their documented order, then create the run.

    Two statements in one transaction on the common path (the guards, then the run):
    1. One statement locks the contact's row (ingest takes the same lock before it exits live
       runs, so an exit event and an enrollment never miss each other) and reads every guard.
    2. A run already bound to this engine run id is a replay: hand it back untouched. A second
       push of the same trigger event is a duplicate and is ignored without a skip row.
    3. journey_disabled → trigger_conditions_not_met → already_entered_once / period_not_elapsed
       → user_unsubscribed → already_active; the first guard that says no is recorded.
    4. One statement inserts the run and, in the snapshot taken after the lock, reads the
       contact's `exit_on` events that occurred at or after the trigger (by event time,
       `occurred_at`). If one matches, the run is recorded as exited for that event and never
       starts, so nothing is sent. The partial unique constraints settle races between concurrent
       triggers (the loser is skipped as already_active, or ignored as a duplicate).

    Under `unraced` (the backtest's isolation, which no other transaction can write) statements
    1 and 4 are one, with the same guards and the same outcome.
    """
    now = now or timezone.now()
    with transaction.atomic():
        run: JourneyRun | None
        draft = _RunDraft(
            journey=journey,
            contact_id=contact_id,
            trigger_event_id=trigger_event_id,
            properties=properties,
            engine_run_id=engine_run_id,
            now=now,
        )
        one_statement = _unraced.get()
        if one_statement:
            guards, run = _enroll_in_one_statement(draft)
        else:
            guards, run = _enrollment_guards(draft), None
        if guards.replay_of is not None:
            return Enrollment(run=JourneyRun.objects.get(pk=guards.replay_of), resumed=True)
        if guards.duplicate:
            return Enrollment(run=None, skip_reason="duplicate_trigger")
        reason = _first_failing_guard(journey=journey, guards=guards, properties=properties)
        if run is not None and reason is not None:  # the one statement's conditions are these guards
            raise AssertionError(f"enrolled in one statement past the guard {reason}")
        if reason is None:
            if not one_statement:
                run = _run_insert(draft)
            if run is not None:
                if journey.goal is not None:  # a goal event that came before the run did
                    conversion_at_entry(
                        journey=journey,
                        run_id=run.id,
                        contact_id=contact_id,
                        trigger_event_id=trigger_event_id,
                        entered_at=now,
                    )
                if run.status == Status.ACTIVE:  # journey.entered for destinations (rows only)
                    from contacts.lifecycle import run_emit

                    run_emit(type="journey.entered", run_id=run.pk)
                return Enrollment(run=run)
            if JourneyRun.objects.filter(journey_id=journey.id, trigger_event_id=trigger_event_id).exists():
                return Enrollment(run=None, skip_reason="duplicate_trigger")
            reason = Skip.ALREADY_ACTIVE
        EnrollmentSkip.objects.create(
            journey_id=journey.id,
            contact_id=contact_id,
            trigger_event_id=trigger_event_id,
            reason=reason,
            created_at=now,
        )
    return Enrollment(run=None, skip_reason=reason)


@dataclass(frozen=True)
class _Guards:
    subscribed: bool
    enabled_override: bool | None
    replay_of: UUID | None
    duplicate: bool
    entered_before: bool
    entered_in_period: bool
    live: bool


_GUARDS_SELECT = f"""
SELECT c.unsubscribed_at IS NULL AS subscribed,
       (SELECT s.enabled FROM journeys_journeysetting s WHERE s.journey_id = %(journey)s) AS enabled_override,
       (SELECT r.id FROM journeys_journeyrun r WHERE r.engine_run_id = %(engine_run_id)s) AS replay_of,
       EXISTS (SELECT 1 FROM journeys_journeyrun r
               WHERE r.journey_id = %(journey)s AND r.trigger_event_id = %(trigger)s) AS duplicate,
       EXISTS (SELECT 1 FROM journeys_journeyrun r
               WHERE r.contact_id = c.id AND r.journey_id = %(journey)s) AS entered_before,
       EXISTS (SELECT 1 FROM journeys_journeyrun r
               WHERE r.contact_id = c.id AND r.journey_id = %(journey)s AND r.entered_at > %(since)s)
           AS entered_in_period,
       EXISTS (SELECT 1 FROM journeys_journeyrun r
               WHERE r.contact_id = c.id AND r.journey_id = %(journey)s AND r.status IN ({JourneyRun.LIVE_STATUSES_SQL})) AS live
FROM contacts_contact c
WHERE c.id = %(contact)s
"""
_GUARDS_SQL = _GUARDS_SELECT + "FOR NO KEY UPDATE OF c\n"


@dataclass
class _RunDraft:
    """What an enrollment was asked to create, and the statement parameters it makes."""

    journey: Journey
    contact_id: UUID
    trigger_event_id: UUID | None
    properties: dict[str, Any]
    engine_run_id: str | None
    now: datetime

    def guard_params(self) -> dict[str, Any]:
        period = self.journey.entry_period
        return {
            "journey": self.journey.id,
            "contact": self.contact_id,
            "trigger": self.trigger_event_id,
            "engine_run_id": self.engine_run_id,
            "since": self.now - journey_time(period) if period is not None else self.now,
        }

    def run(self) -> JourneyRun:
        """The run row, unsaved: its holdout and control group decided here, once."""
        journey, contact_id = self.journey, self.contact_id
        held_out = is_held_out(journey=journey, contact_id=contact_id)
        return unsaved(
            JourneyRun,
            id=uuid4(),
            journey_id=journey.id,
            contact_id=contact_id,
            trigger_event_id=self.trigger_event_id,
            properties=self.properties,
            status=Status.ACTIVE,
            entered_at=self.now,
            engine_run_id=self.engine_run_id,
            version=journey_version(journey),
            held_out=held_out,
            control_group=not held_out and run_in_control_group(journey=journey, contact_id=contact_id),
            updated_at=self.now,
        )

    def insert_params(self, run: JourneyRun) -> dict[str, Any]:
        return {
            "id": run.id,
            "journey": self.journey.id,
            "contact": self.contact_id,
            "trigger": self.trigger_event_id,
            "properties": json.dumps(self.properties, cls=DjangoJSONEncoder),
            "engine_run_id": self.engine_run_id,
            "version": run.version,
            "held_out": run.held_out,
            "control_group": run.control_group,
            "now": self.now,
            "exit_names": sorted({rule.event for rule in self.journey.exit_on}),
        }


def _enrollment_guards(draft: _RunDraft) -> _Guards:
    """Lock the contact and read every guard, in one statement."""
    with prepared_cursor() as cursor:
        cursor.execute(_GUARDS_SQL, draft.guard_params())
        row = cursor.fetchone()
    if row is None:
        raise Contact.DoesNotExist(f"no contact {draft.contact_id}")
    return _Guards(*row)


_EXIT_CANDIDATES = """
    SELECT e.name, e.properties FROM contacts_event e
    WHERE e.contact_id = %(contact)s AND e.name = ANY(%(exit_names)s::text[]) AND e.id <> %(trigger)s
      AND e.occurred_at >= (SELECT t.occurred_at FROM contacts_event t WHERE t.id = %(trigger)s)
    ORDER BY e.occurred_at, e.received_at
"""
_RUN_INSERT = """
    INSERT INTO journeys_journeyrun
        (id, journey_id, contact_id, trigger_event_id, properties, status, current_node,
         entered_at, exit_reason, error, engine_run_id, version, held_out, control_group, updated_at)
    SELECT %(id)s, %(journey)s, %(contact)s, %(trigger)s, %(properties)s::jsonb, 'active', '',
           %(now)s, '', '', %(engine_run_id)s, %(version)s, %(held_out)s, %(control_group)s, %(now)s
    {where}
    ON CONFLICT DO NOTHING
    RETURNING id
"""
_RUN_INSERT_SQL = f"""
WITH exit_candidates AS ({_EXIT_CANDIDATES}), inserted AS ({_RUN_INSERT.format(where="")})
SELECT EXISTS (SELECT 1 FROM inserted),
       (SELECT coalesce(json_agg(json_build_array(name, properties)), '[]') FROM exit_candidates)
"""

# The guards and the insert as one statement, the insert made only if every guard says yes (the
# conditions `_first_failing_guard` checks one by one, the trigger's `where` decided beforehand).
# Only where no other transaction can write these tables (`unraced`): without the lock
# and a statement after it, an exit event committed meanwhile would go unseen.
_ENROLL_WHERE = """FROM g WHERE coalesce(g.enabled_override, %(enabled)s) AND %(conditions_met)s
      AND NOT (%(once)s AND g.entered_before) AND NOT (%(once_per_period)s AND g.entered_in_period)
      AND g.subscribed AND NOT g.live AND g.replay_of IS NULL AND NOT g.duplicate"""
_ENROLL_SQL = f"""
WITH g AS ({_GUARDS_SELECT}), exit_candidates AS ({_EXIT_CANDIDATES}),
inserted AS ({_RUN_INSERT.format(where=_ENROLL_WHERE)})
SELECT g.*, EXISTS (SELECT 1 FROM inserted),
       (SELECT coalesce(json_agg(json_build_array(name, properties)), '[]') FROM exit_candidates
        WHERE EXISTS (SELECT 1 FROM inserted))
FROM g
"""

_unraced: contextvars.ContextVar[bool] = contextvars.ContextVar("hogsend_unraced", default=False)


@contextlib.contextmanager
def unraced() -> Iterator[None]:
    """Leave out what only orders this process's writes against other transactions': enroll in
    one statement (guards and insert) rather than two (the contact's lock and the guards, then the
    insert), and exit a contact's runs without taking that lock first.

    Only for tables no other transaction can write, such as a session's temporary tables (the
    backtest's isolation). Elsewhere the lock and the statement after it are what make an
    enrollment's read of the contact's exit events see one that a concurrent ingest committed
    while the lock was awaited, and an ingest's exit see a run enrolled meanwhile.
    """
    token = _unraced.set(True)
    try:
        yield
    finally:
        _unraced.reset(token)


def _enroll_in_one_statement(draft: _RunDraft) -> tuple[_Guards, JourneyRun | None]:
    journey = draft.journey
    run = draft.run()
    params = {**draft.guard_params(), **draft.insert_params(run)}
    params.update(
        enabled=journey.enabled,
        conditions_met=all_match(journey.trigger.where, draft.properties),
        once=journey.entry_limit is EntryLimit.ONCE,
        once_per_period=journey.entry_limit is EntryLimit.ONCE_PER_PERIOD,
    )
    with prepared_cursor() as cursor:
        cursor.execute(_ENROLL_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise Contact.DoesNotExist(f"no contact {draft.contact_id}")
    *guards, inserted, candidates = row
    return _Guards(*guards), _run_inserted(draft, run, inserted=inserted, candidates=candidates)


def _run_insert(draft: _RunDraft) -> JourneyRun | None:
    """Insert the run (None if a unique constraint refused it), exited at once if an `exit_on`
    event of the contact occurred at or after the trigger (a tie counts as after, so a batch sent
    without timestamps exits)."""
    run = draft.run()
    with prepared_cursor() as cursor:
        cursor.execute(_RUN_INSERT_SQL, draft.insert_params(run))
        inserted, candidates = cursor.fetchone()
    return _run_inserted(draft, run, inserted=inserted, candidates=candidates)


def _run_inserted(draft: _RunDraft, run: JourneyRun, *, inserted: bool, candidates: Any) -> JourneyRun | None:
    if not inserted:
        return None
    run._state.adding = False
    if isinstance(candidates, str):  # json arrives undecoded through Django's connection
        candidates = json.loads(candidates)
    exit_name = next(
        (name for name, props in candidates if draft.journey.exit_rule_for(name, props or {}) is not None),
        None,
    )
    if exit_name is not None:
        now = draft.now
        run.status, run.ended_at, run.exit_reason = Status.EXITED, now, f"exit_on:{exit_name}"[:200]
        JourneyRun.objects.filter(pk=run.id).update(
            status=run.status, ended_at=now, exit_reason=run.exit_reason, updated_at=now
        )
        map_end(run_id=run.id, status=run.status, reason=run.exit_reason)
    return run


def contact_lock(*, contact_id: UUID) -> None:
    """Serialise enrollment and exits for one contact (a row lock, held to the end of the
    transaction). Ingest's exit rules take it after storing the event, enrollment before looking
    for exit events: whichever commits second sees the other's row."""
    with prepared_cursor() as cursor:
        cursor.execute("SELECT 1 FROM contacts_contact WHERE id = %s FOR NO KEY UPDATE", [contact_id])


def _first_failing_guard(*, journey: Journey, guards: _Guards, properties: dict[str, Any]) -> str | None:
    enabled = journey.enabled if guards.enabled_override is None else guards.enabled_override
    if not enabled:
        return Skip.JOURNEY_DISABLED
    if not all_match(journey.trigger.where, properties):
        return Skip.TRIGGER_CONDITIONS_NOT_MET
    if journey.entry_limit is EntryLimit.ONCE and guards.entered_before:
        return Skip.ALREADY_ENTERED_ONCE
    if journey.entry_limit is EntryLimit.ONCE_PER_PERIOD and guards.entered_in_period:
        return Skip.PERIOD_NOT_ELAPSED
    if not guards.subscribed:
        return Skip.USER_UNSUBSCRIBED
    if guards.live:
        return Skip.ALREADY_ACTIVE
    return None


# What else happens in the transaction that ends a run: digests install theirs at start-up
# (journeys.apps), so this module never imports what builds on it.
_run_end_observers: list[Callable[..., Any]] = []


def run_end_observe(observe: Callable[..., Any]) -> None:
    if observe not in _run_end_observers:
        _run_end_observers.append(observe)


def _transition(*, run_id: UUID, to: str, allowed_from: tuple[str, ...], **fields: Any) -> int:
    """A guarded status change as one conditional UPDATE; returns the rows changed (0 or 1)."""
    for source in allowed_from:
        if to not in JourneyRun.TRANSITIONS[source]:
            raise InvalidRunTransition(f"a run cannot go from {source} to {to}")
    with transaction.atomic():
        changed = JourneyRun.objects.filter(pk=run_id, status__in=allowed_from).update(
            status=to, updated_at=timezone.now(), **fields
        )
        if changed and to in (Status.COMPLETED, Status.EXITED, Status.FAILED):
            run_ended(run_id=run_id, status=to, reason=fields.get("exit_reason", ""))
    return changed


def run_ended(*, run_id: UUID, status: str, reason: str = "") -> None:
    """What follows a run's end, in the transaction that ended it: the edge to its end on the map,
    the announcement, and the observers (digests)."""
    map_end(run_id=run_id, status=status, reason=reason)
    run_end_announce(run_id=run_id, status=status)
    for observe in _run_end_observers:
        observe(run_id=run_id)


# A run that completes or fails is also a product event, so journeys and tasks can follow it (the
# CSM alert listens for journey.failed); an exit is not (the event that caused it already is).
ANNOUNCED_AS_EVENTS = (Status.COMPLETED, Status.FAILED)


def run_end_announce(*, run_id: UUID, status: str) -> None:
    """The one announcement of a run's end, in the transaction that ended it.

    1. journey.<status> for destinations, through the lifecycle seam (rows only, sent after commit).
    2. For completed and failed, the system event `journey.<status>` through ingest, keyed by the
       run, so an end announced again (a retried run that fails twice) is stored once.
    """
    from contacts.lifecycle import run_emit

    run_emit(type=f"journey.{status}", run_id=run_id)
    if status not in ANNOUNCED_AS_EVENTS:
        return
    run = JourneyRun.objects.filter(pk=run_id).values("journey_id", "error", "contact__user_id").first()
    if run is None:
        return
    name = f"journey.{status}"
    properties = {"journey_id": run["journey_id"], "run_id": str(run_id)}
    if run["error"]:
        properties["error"] = run["error"].splitlines()[0][:500]
    event_ingest(
        name=name,
        user_id=run["contact__user_id"],
        properties=properties,
        idempotency_key=f"{name}:{run_id}",
        source="system",
    )


def run_complete(*, run_id: UUID) -> bool:
    return bool(
        _transition(
            run_id=run_id,
            to=Status.COMPLETED,
            allowed_from=(Status.ACTIVE,),
            ended_at=timezone.now(),
            waiting_until=None,
        )
    )


def run_fail(*, run_id: UUID, error: str) -> bool:
    return bool(
        _transition(
            run_id=run_id,
            to=Status.FAILED,
            allowed_from=(Status.ACTIVE, Status.WAITING),
            ended_at=timezone.now(),
            error=error[:10000],
            waiting_until=None,
        )
    )


def run_exit(*, run_id: UUID, reason: str) -> bool:
    return bool(
        _transition(
            run_id=run_id,
            to=Status.EXITED,
            allowed_from=(Status.ACTIVE, Status.WAITING),
            ended_at=timezone.now(),
            exit_reason=reason[:200],
            waiting_until=None,
        )
    )


def run_retry(*, run_id: UUID) -> bool:
    """An operator retry: a failed run goes back to active and the engine replays it."""
    return bool(
        _transition(run_id=run_id, to=Status.ACTIVE, allowed_from=(Status.FAILED,), ended_at=None, error="")
    )


# The contact's live runs of these journeys whose trigger occurred at or before the event (or, with
# their trigger event gone, that entered by then), locked. Prepared: every exit event asks it.
_LIVE_RUNS_TO_EXIT_SQL = """
SELECT r.id FROM journeys_journeyrun r LEFT JOIN contacts_event t ON t.id = r.trigger_event_id
WHERE r.contact_id = %(contact)s AND r.journey_id = ANY(%(journeys)s::text[]) AND r.status = ANY(%(live)s::text[])
  AND (t.occurred_at <= %(at)s OR (r.trigger_event_id IS NULL AND r.entered_at <= %(at)s))
FOR UPDATE OF r
"""


def runs_exit_for_event(*, event: Event) -> list[UUID]:
    """Mark exited every live run of the event's contact whose journey lists it in `exit_on` and
    whose trigger occurred at or before the event (event time, a tie counts as after, as at
    enrollment): a late event from before the trigger leaves the run alone. A run whose trigger
    event is gone is measured from its entry.

    Runs inside the ingest transaction; the caller cancels the returned runs in the engine after
    commit.
    """
    from journeys.registry import registry

    journey_ids = [j.id for j in registry.all() if j.exit_rule_for(event.name, event.properties) is not None]
    if not journey_ids:
        return []
    if not _unraced.get():
        contact_lock(contact_id=event.contact_id)  # its own statement: what follows reads after the lock
    params = {
        "contact": event.contact_id,
        "journeys": journey_ids,
        "live": list(JourneyRun.LIVE_STATUSES),
        "at": event.occurred_at,
    }
    with prepared_cursor() as cursor:
        cursor.execute(_LIVE_RUNS_TO_EXIT_SQL, params)
        live = [row[0] for row in cursor.fetchall()]
    for run_id in live:
        run_exit(run_id=run_id, reason=f"exit_on:{event.name}")
    return live


def journey_set_enabled(*, journey_id: str, enabled: bool) -> JourneySetting:
    setting, _ = JourneySetting.objects.update_or_create(journey_id=journey_id, defaults={"enabled": enabled})
    return setting
