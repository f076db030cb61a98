"""Writes for journey runs and their step log. Sync, keyword-only; async callers wrap them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from contacts.models import Contact, Event
from journeys.conditions import all_match
from journeys.definition import EntryLimit, Journey
from journeys.durations import journey_time
from journeys.models import EnrollmentSkip, JourneyRun, JourneySetting, RunStep

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

    1. A run already bound to this engine run id is a replay: hand it back untouched.
    2. journey_disabled → trigger_conditions_not_met → already_entered_once / period_not_elapsed
       → user_unsubscribed → already_active; the first guard that says no is recorded.
    3. Insert the run, holding the contact's row lock (ingest takes the same lock before it
       exits live runs, so an exit event and an enrollment never miss each other). If an
       `exit_on` event of this contact occurred at or after the trigger (by event time,
       `occurred_at`) it is already stored: the run is recorded as exited for that event and
       never starts, so nothing is sent. The partial unique constraint settles races between
       concurrent triggers (the loser is skipped as already_active); a second push of the same
       trigger event is a duplicate and is ignored without a skip row.
    """
    now = now or timezone.now()
    if engine_run_id:
        existing = JourneyRun.objects.filter(engine_run_id=engine_run_id).first()
        if existing is not None:
            return Enrollment(run=existing, resumed=True)
    if (
        trigger_event_id
        and JourneyRun.objects.filter(journey_id=journey.id, trigger_event_id=trigger_event_id).exists()
    ):
        return Enrollment(run=None, skip_reason="duplicate_trigger")

    contact = Contact.objects.get(pk=contact_id)
    reason = _first_failing_guard(journey=journey, contact=contact, properties=properties, now=now)
    if reason is None:
        try:
            with transaction.atomic():
                contact_lock(contact_id=contact.pk)
                exit_event = _exit_event_since_trigger(journey=journey, trigger_event_id=trigger_event_id)
                run = JourneyRun.objects.create(
                    journey_id=journey.id,
                    contact=contact,
                    trigger_event_id=trigger_event_id,
                    properties=properties,
                    status=Status.ACTIVE if exit_event is None else Status.EXITED,
                    entered_at=now,
                    ended_at=None if exit_event is None else now,
                    exit_reason="" if exit_event is None else f"exit_on:{exit_event.name}"[:200],
                    engine_run_id=engine_run_id,
                )
            if run.status == Status.ACTIVE:  # journey.entered for destinations (rows only)
                from integrations.lifecycle import run_emit

                run_emit(type="journey.entered", run_id=run.pk)
            return Enrollment(run=run)
        except IntegrityError:
            if (
                trigger_event_id
                and JourneyRun.objects.filter(
                    journey_id=journey.id, trigger_event_id=trigger_event_id
                ).exists()
            ):
                return Enrollment(run=None, skip_reason="duplicate_trigger")
            reason = Skip.ALREADY_ACTIVE
    EnrollmentSkip.objects.create(
        journey_id=journey.id,
        contact=contact,
        trigger_event_id=trigger_event_id,
        reason=reason,
        created_at=now,
    )
    return Enrollment(run=None, skip_reason=reason)


def contact_lock(*, contact_id: UUID) -> None:
    """Serialise enrollment and exits for one contact (a row lock, held to the end of the
    transaction). Ingest's exit rules take it after storing the event, enrollment before looking
    for exit events: whichever commits second sees the other's row."""
    list(Contact.objects.select_for_update(no_key=True).filter(pk=contact_id).values_list("pk", flat=True))


def _exit_event_since_trigger(*, journey: Journey, trigger_event_id: UUID | None) -> Event | None:
    """The first stored `exit_on` event of the trigger's contact that occurred at or after the
    trigger (event time; a tie counts as after, so a batch sent without timestamps exits)."""
    if trigger_event_id is None or not journey.exit_on:
        return None
    trigger = Event.objects.filter(pk=trigger_event_id).values("contact_id", "occurred_at").first()
    if trigger is None:
        return None
    candidates = (
        Event.objects.filter(
            contact_id=trigger["contact_id"],
            name__in={rule.event for rule in journey.exit_on},
            occurred_at__gte=trigger["occurred_at"],
        )
        .exclude(pk=trigger_event_id)
        .order_by("occurred_at", "received_at")
    )
    for event in candidates.iterator(chunk_size=100):
        if journey.exit_rule_for(event.name, event.properties) is not None:
            return event
    return None


def _first_failing_guard(
    *, journey: Journey, contact: Contact, properties: dict[str, Any], now: datetime
) -> str | None:
    if not journey_is_enabled(journey=journey):
        return Skip.JOURNEY_DISABLED
    if not all_match(journey.trigger.where, properties):
        return Skip.TRIGGER_CONDITIONS_NOT_MET
    previous = JourneyRun.objects.filter(contact=contact, journey_id=journey.id)
    if journey.entry_limit is EntryLimit.ONCE and previous.exists():
        return Skip.ALREADY_ENTERED_ONCE
    if journey.entry_limit is EntryLimit.ONCE_PER_PERIOD:
        assert journey.entry_period is not None
        since = now - journey_time(journey.entry_period)
        if previous.filter(entered_at__gt=since).exists():
            return Skip.PERIOD_NOT_ELAPSED
    if not contact.is_subscribed:
        return Skip.USER_UNSUBSCRIBED
    if previous.filter(status__in=JourneyRun.LIVE_STATUSES).exists():
        return Skip.ALREADY_ACTIVE
    return None


def _transition(*, run_id: UUID, to: str, allowed_from: tuple[str, ...], **fields: Any) -> int:
    """A guarded status change as one conditional UPDATE; returns the rows changed (0 or 1)."""
    for source in allowed_from:
        if to not in JourneyRun.TRANSITIONS[source]:
            raise InvalidRunTransition(f"a run cannot go from {source} to {to}")
    changed = JourneyRun.objects.filter(pk=run_id, status__in=allowed_from).update(
        status=to, updated_at=timezone.now(), **fields
    )
    if changed and to in (Status.COMPLETED, Status.EXITED, Status.FAILED):
        from integrations.lifecycle import run_emit  # journey.<status> for destinations (rows only)

        run_emit(type=f"journey.{to}", run_id=run_id)
    return changed


def _require_live(run_id: UUID, changed: int) -> None:
    if not changed:
        status = JourneyRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        raise RunNotLive(run_id, status or "gone")


def run_park(
    *, run_id: UUID, seq: int, kind: str, label: str, until: datetime, result: dict[str, Any]
) -> None:
    """Enter a sleep or wait: status waiting, the label as current node, the step recorded."""
    with transaction.atomic():
        changed = JourneyRun.objects.filter(pk=run_id, status__in=JourneyRun.LIVE_STATUSES).update(
            status=Status.WAITING, current_node=label[:200], waiting_until=until, updated_at=timezone.now()
        )
        _require_live(run_id, changed)
        RunStep.objects.update_or_create(
            run_id=run_id,
            seq=seq,
            defaults={"kind": kind, "label": label[:200], "result": result, "recorded_at": timezone.now()},
        )


def run_resume(*, run_id: UUID, seq: int, result: dict[str, Any]) -> None:
    """Leave a sleep or wait: back to active, the step's outcome recorded; refuses an ended run."""
    with transaction.atomic():
        changed = JourneyRun.objects.filter(pk=run_id, status__in=JourneyRun.LIVE_STATUSES).update(
            status=Status.ACTIVE, waiting_until=None, updated_at=timezone.now()
        )
        _require_live(run_id, changed)
        RunStep.objects.filter(run_id=run_id, seq=seq).update(result=result)


def step_get(*, run_id: UUID, seq: int) -> tuple[str, RunStep | None]:
    """The run's status and whatever was recorded at this position."""
    status = JourneyRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
    step = RunStep.objects.filter(run_id=run_id, seq=seq).first()
    return status or "gone", step


def step_record(*, run_id: UUID, seq: int, kind: str, label: str, result: dict[str, Any]) -> None:
    RunStep.objects.update_or_create(
        run_id=run_id,
        seq=seq,
        defaults={"kind": kind, "label": label[:200], "result": result, "recorded_at": timezone.now()},
    )


def run_checkpoint(*, run_id: UUID, seq: int, label: str) -> None:
    with transaction.atomic():
        changed = JourneyRun.objects.filter(pk=run_id, status__in=JourneyRun.LIVE_STATUSES).update(
            current_node=label[:200], updated_at=timezone.now()
        )
        _require_live(run_id, changed)
        step_record(run_id=run_id, seq=seq, kind=RunStep.Kind.CHECKPOINT, label=label, result={})


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
    contact_lock(contact_id=event.contact_id)
    live = list(
        JourneyRun.objects.select_for_update(of=("self",))
        .filter(contact_id=event.contact_id, journey_id__in=journey_ids, status__in=JourneyRun.LIVE_STATUSES)
        .filter(
            Q(trigger_event__occurred_at__lte=event.occurred_at)
            | Q(trigger_event__isnull=True, entered_at__lte=event.occurred_at)
        )
        .values_list("pk", flat=True)
    )
    for run_id in live:
        run_exit(run_id=run_id, reason=f"exit_on:{event.name}")
    return live


def journey_set_enabled(*, journey_id: str, enabled: bool) -> JourneySetting:
    setting, _ = JourneySetting.objects.update_or_create(journey_id=journey_id, defaults={"enabled": enabled})
    return setting
