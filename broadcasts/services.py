"""Broadcast writes: create, start (materialise the audience), pause, resume, cancel.

Every operator action is one transaction that makes the change and writes its audit entry; the
workers are handed the broadcast after commit (`broadcasts.tasks`), by id.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import OuterRef, Subquery, TextField, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from broadcasts.audience import ConditionError, filter_parse
from broadcasts.local_time import LocalTimeProblem, earliest_moment, local_date_parse, local_time_parse
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.segments import UnknownSegment, segment_check
from broadcasts.starting import broadcast_begin
from contacts.categories import UnknownCategory, category_get, category_resends_if_uncertain
from contacts.services import audit_record
from emails.actions import template_test_send
from emails.models import EmailLog
from emails.policy import PolicyError, on_cap_check
from emails.registry import CONFIRMATION_TEMPLATE, UnknownTemplate, get_template

Status = Broadcast.Status
State = BroadcastRecipient.State
MAX_RATE = 10_000.0
MAX_PRIORITY = 100  # as a journey's priority


class BroadcastError(ValueError):
    """A broadcast that cannot be made or a change its state does not allow. `field` names the
    input at fault (for a 422), empty for a state conflict (a 409)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _journey_check(journey_id: str) -> None:
    # Enrolling is journeys' business: their registry, read through the journeys app.
    from journeys.registry import registry

    if registry.get(journey_id) is None:
        known = ", ".join(sorted(j.id for j in registry.all())) or "none"
        raise BroadcastError(f"unknown journey {journey_id!r}; registered: {known}", field="journey")


def broadcast_validate(
    *,
    template: str = "",
    journey_id: str = "",
    props: dict[str, Any] | None = None,
    category: str = "",
    segment_id: str = "",
    conditions: Any = None,
    rate: float = 50.0,
    send_at: datetime | None = None,
    local_time: Any = None,
    local_date: Any = None,
    priority: int = 0,
    on_cap: str = "skip",
) -> list[dict[str, Any]]:
    """Check everything a broadcast names; returns the saved filter normalised. Raises
    BroadcastError naming the field and what to do."""
    _when_check(send_at=send_at, local_time=local_time, local_date=local_date)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
        raise BroadcastError(
            f"priority is a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY}; got {priority!r}",
            field="priority",
        )
    try:
        on_cap_check(on_cap)
    except PolicyError as error:
        raise BroadcastError(str(error), field="onCap") from None
    if bool(template) == bool(journey_id):
        raise BroadcastError("a broadcast sends a template or enrolls into a journey: give exactly one",
                             field="template")  # fmt: skip
    if template:
        try:
            spec = get_template(template)
        except UnknownTemplate as error:
            raise BroadcastError(str(error), field="template") from None
        if template == CONFIRMATION_TEMPLATE:
            raise BroadcastError(
                "the confirmation email is sent by signups, never broadcast", field="template"
            )
        missing = [name for name in spec.required_props if (props or {}).get(name) in (None, "")]
        if missing:
            raise BroadcastError(f"template {template!r} needs props: {', '.join(missing)}", field="props")
        category = category or spec.category
        try:
            category_get(category)
        except UnknownCategory as error:
            raise BroadcastError(str(error), field="category") from None
        if category_resends_if_uncertain(category) or category == "confirmation":
            raise BroadcastError(
                f"category {category!r} is sent again when a send's outcome is unknown; a broadcast "
                "reaches each recipient at most once, so give it a marketing or lifecycle category",
                field="category",
            )
    else:
        _journey_check(journey_id)
    if segment_id and conditions:
        raise BroadcastError("give a segment or a filter, not both", field="segment")
    if segment_id:
        try:
            segment_check(segment_id)
        except UnknownSegment as error:
            raise BroadcastError(str(error), field="segment") from None
    try:
        normalised = filter_parse(conditions)
    except ConditionError as error:
        raise BroadcastError(str(error), field="filter") from None
    if not (0 <= rate <= MAX_RATE):
        raise BroadcastError(f"rate is sends per second, 0 (as fast as the workers go) to {MAX_RATE:.0f}",
                             field="rate")  # fmt: skip
    return normalised


def _when_check(
    *, send_at: datetime | None, local_time: Any, local_date: Any, now: datetime | None = None
) -> tuple[time, date, datetime] | None:
    """For a broadcast sent in each recipient's own zone: its wall-clock time, its day, and when it
    starts (None for one that is not). Without a time it is 00:00 that day; without a day, the
    first day whose time is still ahead everywhere (after `send_at`, or now); without `send_at`
    it starts when that time first comes anywhere."""
    if local_time in (None, "") and local_date in (None, ""):
        return None
    try:
        at = time(0, 0) if local_time in (None, "") else local_time_parse(local_time)
    except LocalTimeProblem as error:
        raise BroadcastError(str(error), field="localTime") from None
    try:
        day = None if local_date in (None, "") else local_date_parse(local_date)
    except LocalTimeProblem as error:
        raise BroadcastError(str(error), field="localDate") from None
    if day is None:
        after = send_at or now or timezone.now()
        day = max(after.date(), date.min + timedelta(days=1)) - timedelta(days=1)
        while day < date.max and earliest_moment(day, at) <= after:
            day += timedelta(days=1)
    return at, day, send_at or earliest_moment(day, at)


def broadcast_create(
    *,
    name: str,
    template: str = "",
    journey_id: str = "",
    props: dict[str, Any] | None = None,
    category: str = "",
    segment_id: str = "",
    conditions: Any = None,
    send_at: datetime | None = None,
    local_time: str | time | None = None,
    local_date: str | date | None = None,
    rate: float = 50.0,
    priority: int = 0,
    on_cap: str = "skip",
    actor: Any = None,
    start: bool = True,
) -> Broadcast:
    """Create a broadcast; with no `send_at` (or one already past) it starts at once.

    `local_time` ("10:00") with `local_date` ("2026-12-10") sends it at that wall-clock time in
    each recipient's own zone (broadcasts.local_time; a zone already past it when the broadcast
    starts is sent at once). It starts at `send_at` if given, else when that time first comes
    anywhere (UTC+14); see `_when_check` for either part missing.
    `priority` and `on_cap` ("skip" or "defer") go to every send's frequency-cap decision.
    The workers get it after commit: now, or at `send_at` from the tick (`broadcasts.tick`).
    """
    normalised = broadcast_validate(
        template=template,
        journey_id=journey_id,
        props=props,
        category=category,
        segment_id=segment_id,
        conditions=conditions,
        rate=rate,
        send_at=send_at,
        local_time=local_time,
        local_date=local_date,
        priority=priority,
        on_cap=on_cap,
    )
    local = _when_check(send_at=send_at, local_time=local_time, local_date=local_date)
    if local is not None:
        send_at = local[2]
    if template and not category:
        category = get_template(template).category
    now = timezone.now()
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            name=name,
            template=template,
            journey_id=journey_id,
            props=props or {},
            category=category,
            segment_id=segment_id,
            filter=normalised,
            send_at=send_at,
            local_time=local[0] if local else None,
            local_date=local[1] if local else None,
            rate=rate,
            priority=priority,
            on_cap=on_cap,
            created_by=_actor_label(actor),
            created_at=now,
        )
        audit_record(
            actor=actor,
            action="broadcast.create",
            target_type="broadcast",
            target_id=str(broadcast.pk),
            detail={
                "name": name,
                "template": template,
                "journey": journey_id,
                "audience": broadcast.audience_label,
            },
        )
    if start and (send_at is None or send_at <= now):
        broadcast = broadcast_start(broadcast_id=broadcast.pk)
    return broadcast


def broadcast_start(*, broadcast_id: UUID) -> Broadcast:
    """Start a scheduled broadcast now (its recipients written) and hand it to the workers."""
    broadcast, started = broadcast_begin(broadcast_id=broadcast_id)
    if started:
        _hand_to_workers(broadcast.pk)
    return broadcast


def _hand_to_workers(broadcast_id: UUID) -> None:
    from broadcasts.tasks import broadcast_drains_enqueue

    transaction.on_commit(lambda: broadcast_drains_enqueue(broadcast_id=broadcast_id))


def _transition(
    *, broadcast_id: UUID, actor: Any, action: str, allowed: tuple[str, ...], to: str
) -> Broadcast:
    broadcast = Broadcast.objects.select_for_update().filter(pk=broadcast_id).first()
    if broadcast is None:
        raise Broadcast.DoesNotExist(f"no broadcast {broadcast_id}")
    if broadcast.status not in allowed:
        raise BroadcastError(f"a {broadcast.status} broadcast cannot be {action}d")
    fields: dict[str, Any] = {"status": to}
    if to in (Status.CANCELLED, Status.COMPLETED):
        fields["finished_at"] = timezone.now()
    Broadcast.objects.filter(pk=broadcast_id).update(**fields)
    audit_record(
        actor=actor, action=f"broadcast.{action}", target_type="broadcast", target_id=str(broadcast_id)
    )
    return broadcast


def broadcast_pause(*, broadcast_id: UUID, actor: Any = None) -> Broadcast:
    """Running (or scheduled) → paused: workers stop after the batch in hand; nothing is lost."""
    with transaction.atomic():
        _transition(
            broadcast_id=broadcast_id,
            actor=actor,
            action="pause",
            allowed=(Status.RUNNING, Status.SCHEDULED),
            to=Status.PAUSED,
        )
    return Broadcast.objects.get(pk=broadcast_id)


def broadcast_resume(*, broadcast_id: UUID, actor: Any = None) -> Broadcast:
    """Paused → running (or back to scheduled if it never started and its moment is ahead)."""
    with transaction.atomic():
        broadcast = _transition(
            broadcast_id=broadcast_id,
            actor=actor,
            action="resume",
            allowed=(Status.PAUSED,),
            to=Status.RUNNING,
        )
        if broadcast.started_at is None:
            Broadcast.objects.filter(pk=broadcast_id).update(status=Status.SCHEDULED)
        else:
            Broadcast.objects.filter(pk=broadcast_id).update(next_slot_at=None)
            _hand_to_workers(broadcast_id)
    broadcast = Broadcast.objects.get(pk=broadcast_id)
    if broadcast.status == Status.SCHEDULED and (
        broadcast.send_at is None or broadcast.send_at <= timezone.now()
    ):
        broadcast = broadcast_start(broadcast_id=broadcast_id)
    return broadcast


def broadcast_cancel(*, broadcast_id: UUID, actor: Any = None) -> Broadcast:
    """Cancel: nothing more is sent. In one transaction, under the broadcast's lock (which a
    worker's batch takes before it writes its emails):
    1. the broadcast becomes cancelled;
    2. every recipient not done is done with outcome `cancelled` (and its email, if one was written);
    3. its emails still queued (written, not yet handed to the provider) are suppressed with
       reason `broadcast_cancelled`: a worker's claim of such a row then finds it taken.
    """
    with transaction.atomic():
        _transition(
            broadcast_id=broadcast_id,
            actor=actor,
            action="cancel",
            allowed=(Status.SCHEDULED, Status.RUNNING, Status.PAUSED),
            to=Status.CANCELLED,
        )
        now = timezone.now()
        # A recipient a worker held has its email (if written) linked by key, for the report.
        written = EmailLog.objects.filter(
            idempotency_key=Concat(
                Value(f"broadcast:{broadcast_id}:"), Cast(OuterRef("contact_id"), TextField())
            )
        ).values("pk")[:1]
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id).exclude(state=State.DONE).update(
            state=State.DONE, outcome="cancelled", reason="broadcast_cancelled", done_at=now,
            email_id=Coalesce("email_id", Subquery(written)),
        )  # fmt: skip
        EmailLog.objects.filter(
            idempotency_key__startswith=f"broadcast:{broadcast_id}:", status=EmailLog.Status.QUEUED
        ).update(status=EmailLog.Status.SUPPRESSED, status_reason="broadcast_cancelled", updated_at=now)
    return Broadcast.objects.get(pk=broadcast_id)


def broadcast_test_send(*, actor: Any, template: str, props: dict[str, Any] | None, to: str) -> EmailLog:
    """Send a broadcast's template with its props to one operator address, marked [test].

    Like a template's test send (emails.actions) but with the props the broadcast will send:
    operator mail, transactional, audited in the transaction that writes its log row; the
    provider is called after that commit. Raises BroadcastError for an unknown template or
    missing props."""
    broadcast_validate(template=template, props=props)
    return template_test_send(
        actor=actor, template=template, to=to, props=dict(props or {}), action="broadcast.test_send"
    )


def _actor_label(actor: Any) -> str:
    if actor is None:
        return ""
    return str(getattr(actor, "get_username", lambda: str(actor))())[:200]
