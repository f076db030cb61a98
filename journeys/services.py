"""Writes for journey runs and their step log. Sync, keyword-only; async callers wrap them."""

from __future__ import annotations

import json
from collections.abc import Callable
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
    """
    now = now or timezone.now()
    with transaction.atomic():
        guards = _enrollment_guards(
            journey=journey,
            contact_id=contact_id,
            trigger_event_id=trigger_event_id,
            engine_run_id=engine_run_id,
            now=now,
        )
        if guards.replay_of is not None:
            return Enrollment(run=JourneyRun.objects.get(pk=guards.replay_of), resumed=True)
        if guards.duplicate:
            return Enrollment(run=None, skip_reason="duplicate_trigger")
        reason = _first_failing_guard(journey=journey, guards=guards, properties=properties)
        if reason is None:
            run = _run_insert(
                journey=journey,
                contact_id=contact_id,
                trigger_event_id=trigger_event_id,
                properties=properties,
                engine_run_id=engine_run_id,
                now=now,
            )
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


_GUARDS_SQL = f"""
SELECT c.unsubscribed_at IS NULL,
       (SELECT s.enabled FROM journeys_journeysetting s WHERE s.journey_id = %(journey)s),
       (SELECT r.id FROM journeys_journeyrun r WHERE r.engine_run_id = %(engine_run_id)s),
       EXISTS (SELECT 1 FROM journeys_journeyrun r
               WHERE r.journey_id = %(journey)s AND r.trigger_event_id = %(trigger)s),
       EXISTS (SELECT 1 FROM journeys_journeyrun r WHERE r.contact_id = c.id AND r.journey_id = %(journey)s),
       EXISTS (SELECT 1 FROM journeys_journeyrun r
               WHERE r.contact_id = c.id AND r.journey_id = %(journey)s AND r.entered_at > %(since)s),
       EXISTS (SELECT 1 FROM journeys_journeyrun r
               WHERE r.contact_id = c.id AND r.journey_id = %(journey)s
                 AND r.status IN ({", ".join(f"'{s}'" for s in JourneyRun.LIVE_STATUSES)}))
FROM contacts_contact c
WHERE c.id = %(contact)s
FOR NO KEY UPDATE OF c
"""


def _enrollment_guards(
    *,
    journey: Journey,
    contact_id: UUID,
    trigger_event_id: UUID | None,
    engine_run_id: str | None,
    now: datetime,
) -> _Guards:
    """Lock the contact and read every guard, in one statement."""
    period = journey_time(journey.entry_period) if journey.entry_period is not None else None
    with prepared_cursor() as cursor:
        cursor.execute(
            _GUARDS_SQL,
            {
                "journey": journey.id,
                "contact": contact_id,
                "trigger": trigger_event_id,
                "engine_run_id": engine_run_id,
                "since": now - period if period is not None else now,
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise Contact.DoesNotExist(f"no contact {contact_id}")
    return _Guards(*row)


_RUN_INSERT_SQL = """
WITH exit_candidates AS (
    SELECT e.name, e.properties FROM contacts_event e
    WHERE e.contact_id = %(contact)s AND e.name = ANY(%(exit_names)s::text[]) AND e.id <> %(trigger)s
      AND e.occurred_at >= (SELECT t.occurred_at FROM contacts_event t WHERE t.id = %(trigger)s)
    ORDER BY e.occurred_at, e.received_at
), inserted AS (
    INSERT INTO journeys_journeyrun
        (id, journey_id, contact_id, trigger_event_id, properties, status, current_node,
         entered_at, exit_reason, error, engine_run_id, version, held_out, control_group, updated_at)
    VALUES (%(id)s, %(journey)s, %(contact)s, %(trigger)s, %(properties)s::jsonb, 'active', '',
            %(now)s, '', '', %(engine_run_id)s, %(version)s, %(held_out)s, %(control_group)s, %(now)s)
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM inserted),
       (SELECT coalesce(json_agg(json_build_array(name, properties)), '[]') FROM exit_candidates)
"""


def _run_insert(
    *,
    journey: Journey,
    contact_id: UUID,
    trigger_event_id: UUID | None,
    properties: dict[str, Any],
    engine_run_id: str | None,
    now: datetime,
) -> JourneyRun | None:
    """Insert the run (None if a unique constraint refused it), exited at once if an `exit_on`
    event of the contact occurred at or after the trigger (a tie counts as after, so a batch sent
    without timestamps exits)."""
    held_out = is_held_out(journey=journey, contact_id=contact_id)
    run = unsaved(
        JourneyRun,
        id=uuid4(),
        journey_id=journey.id,
        contact_id=contact_id,
        trigger_event_id=trigger_event_id,
        properties=properties,
        status=Status.ACTIVE,
        entered_at=now,
        engine_run_id=engine_run_id,
        version=journey_version(journey),
        held_out=held_out,
        control_group=not held_out and run_in_control_group(journey=journey, contact_id=contact_id),
        updated_at=now,
    )
    with prepared_cursor() as cursor:
        cursor.execute(
            _RUN_INSERT_SQL,
            {
                "id": run.id,
                "journey": journey.id,
                "contact": contact_id,
                "trigger": trigger_event_id,
                "properties": json.dumps(properties, cls=DjangoJSONEncoder),
                "engine_run_id": engine_run_id,
                "version": run.version,
                "held_out": run.held_out,
                "control_group": run.control_group,
                "now": now,
                "exit_names": sorted({rule.event for rule in journey.exit_on}),
            },
        )
        inserted, candidates = cursor.fetchone()
    if not inserted:
        return None
    run._state.adding = False
    if isinstance(candidates, str):  # json arrives undecoded through Django's connection
        candidates = json.loads(candidates)
    exit_name = next(
        (name for name, props in candidates if journey.exit_rule_for(name, props or {}) is not None), None
    )
    if exit_name is not None:
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
