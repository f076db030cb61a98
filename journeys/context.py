"""The journey context: what a journey's `ctx` can do, and the step log that makes it replayable.

Every call a journey makes through `ctx` (and every `send_email`) takes the next position in the
run's step log. The first time a position runs, its result is recorded; when the engine runs the
function again from the top (eviction, a worker restart), recorded positions return what they
returned before, so the replay takes the same branches and never repeats a send or a trigger.
Durable waits (`sleep`, `wait_for_event`) are re-issued to the backend on replay so the engine's
own positional log stays aligned; it answers them at once.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID

from asgiref.sync import sync_to_async
from django.utils.dateparse import parse_datetime

from contacts.selectors import contact_timezone_get
from contacts.timezones import next_local_time, parse_time_of_day, zone_named
from journeys import digests, selectors, services, steps
from journeys.conditions import Condition, WhereSpec, parse_where
from journeys.definition import Journey
from journeys.durations import Duration, journey_time
from journeys.experiments import variant_arms_check, variant_pick
from journeys.models import JourneyRun, RunStep

T = TypeVar("T")
Kind = RunStep.Kind

current_context: contextvars.ContextVar[JourneyContext | None] = contextvars.ContextVar(
    "hogsend_journey_context", default=None
)
# The backend of a custom durable task (no journey context, but the same engine underneath).
current_backend: contextvars.ContextVar[DurableBackend | None] = contextvars.ContextVar(
    "hogsend_task_backend", default=None
)


async def db_call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run sync database code from a journey, a task, or plain async code."""
    ctx = current_context.get()
    backend = ctx.backend if ctx is not None else current_backend.get()
    if backend is not None:
        return await backend.db(fn, **kwargs)
    return await sync_to_async(fn)(**kwargs)


def _compute_after(
    *,
    pending: dict[str, Any] | None,
    run_id: UUID,
    seq: int,
    kind: str,
    label: str,
    compute: Callable[[int], Any],
    encode: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """A `db_step`'s unit of work: the step before it recorded (if it is still unrecorded), then
    this one computed; its own record waits for the run's next unit (`JourneyContext._pending`)."""
    if pending is not None:
        steps.step_record(**pending)
    return encode(compute(seq))


def _after_record(
    *, pending: dict[str, Any], strict: bool, fn: Callable[..., T], kwargs: dict[str, Any]
) -> T:
    """A unit of work with the run's unrecorded step recorded first. Not `strict` (a run's end):
    a run that ended meanwhile takes no record, and `fn` (which knows what an ended run allows)
    runs all the same."""
    try:
        steps.step_record(**pending)
    except services.RunNotLive:
        if strict:
            raise
    return fn(**kwargs)


class NonDeterministicJourney(RuntimeError):
    """A replay asked for a different kind of step at a recorded position."""


class JourneyExit(Exception):
    """Raised by `ctx.exit(reason)`; the runner marks the run exited."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DurableBackend(Protocol):
    """What the journey context needs from an engine (Hatchet, or the virtual-time harness)."""

    def now(self) -> datetime: ...

    async def db(self, fn: Callable[..., T], /, **kwargs: Any) -> T: ...

    async def sleep(
        self, *, run_id: UUID, seq: int, duration: timedelta, deadline: datetime, label: str
    ) -> None: ...

    async def wait_for_event(
        self,
        *,
        run_id: UUID,
        seq: int,
        contact_id: UUID,
        event: str,
        where: tuple[Condition, ...],
        deadline: datetime,
        timeout: timedelta,
        label: str,
        replay: dict[str, Any] | None,
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class JourneyUser:
    """The enrolled contact, as the journey sees it."""

    id: str
    email: str
    properties: dict[str, Any]
    state_id: str
    journey_id: str
    journey_name: str
    contact_id: str = ""


@dataclass(frozen=True)
class SleepResult:
    slept_at: datetime
    resumed_at: datetime


@dataclass(frozen=True)
class WaitResult:
    timed_out: bool
    properties: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class CollectedEvent:
    """One event a digest collected."""

    event_id: str
    occurred_at: datetime
    properties: dict[str, Any]


@dataclass(frozen=True)
class DigestResult:
    """What `ctx.digest` returns once the window closed: the collected events, oldest first (at
    most the digest's `max_items`), and how many it collected in all."""

    key: str
    opened_at: datetime
    closed_at: datetime
    count: int
    items: list[CollectedEvent]

    def properties(self) -> list[dict[str, Any]]:
        """The items' properties, oldest first: what an email's template props usually need."""
        return [item.properties for item in self.items]


@dataclass(frozen=True)
class EventHistory:
    found: bool
    count: int


@dataclass(frozen=True)
class JourneyHistory:
    completed: bool
    last_completed_at: datetime | None
    entry_count: int


@dataclass(frozen=True)
class EmailHistory:
    sent: bool
    last_sent_at: datetime | None
    count: int


def _dt(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class _Guard:
    def __init__(self, ctx: JourneyContext) -> None:
        self._ctx = ctx

    async def is_subscribed(self) -> bool:
        """False once the contact has unsubscribed from everything."""
        ctx = self._ctx
        result = await ctx.step(
            Kind.GUARD,
            "is_subscribed",
            lambda seq: ctx.backend.db(selectors.contact_is_subscribed, contact_id=ctx.contact_id),
            encode=lambda subscribed: {"subscribed": subscribed},
        )
        return bool(result["subscribed"])


class _History:
    """`ctx.history`: reads of what a contact did, each a step whose record goes with the run's
    next unit of database work (`JourneyContext.db_step`), so a read costs one statement."""

    def __init__(self, ctx: JourneyContext) -> None:
        self._ctx = ctx

    async def has_event(self, user_id: str, event: str, within: Duration | None = None) -> EventHistory:
        ctx = self._ctx
        since = ctx.backend.now() - journey_time(within) if within else None
        result = await ctx.db_step(
            Kind.HISTORY,
            f"has_event:{event}",
            lambda seq: selectors.event_count(user_id=user_id, event=event, since=since),
            encode=lambda count: {"found": count > 0, "count": count},
        )
        return EventHistory(found=result["found"], count=result["count"])

    async def journey(self, user_id: str, journey_id: str) -> JourneyHistory:
        ctx = self._ctx
        result = await ctx.db_step(
            Kind.HISTORY,
            f"journey:{journey_id}",
            lambda seq: selectors.journey_history(user_id=user_id, journey_id=journey_id),
            encode=lambda r: r,
        )
        return JourneyHistory(
            completed=result["completed"],
            last_completed_at=_dt(result["last_completed_at"]),
            entry_count=result["entry_count"],
        )

    async def email(self, email: str, template: str) -> EmailHistory:
        ctx = self._ctx
        result = await ctx.db_step(
            Kind.HISTORY,
            f"email:{template}",
            lambda seq: selectors.email_history(email=email, template=template),
            encode=lambda r: r,
        )
        return EmailHistory(
            sent=result["sent"], last_sent_at=_dt(result["last_sent_at"]), count=result["count"]
        )


class JourneyContext:
    """`ctx` inside a journey. Create one per execution of the run function."""

    def __init__(
        self,
        *,
        journey: Journey,
        run_id: UUID,
        contact_id: UUID,
        user: JourneyUser,
        backend: DurableBackend,
        recorded: dict[int, RunStep] | None = None,
        held_out: bool = False,
        control_group: bool = False,
    ) -> None:
        """`recorded` is the run's step log when the caller knows it (`{}` for a run enrollment just
        created); otherwise it is read once, at the first position. `held_out`: the run is in its
        journey's holdout, so its sends are recorded as skipped (`held_out`), never sent;
        `control_group`: it enrolled in the global control group, so its marketing sends are
        skipped as `control_group`."""
        self.journey = journey
        self.run_id = run_id
        self.contact_id = contact_id
        self.user = user
        self.backend = backend
        self.held_out = held_out
        self.control_group = control_group
        self.guard = _Guard(self)
        self.history = _History(self)
        self._seq = 0
        self._recorded = recorded
        self._arms: dict[str, str] = {}
        # A `db_step`'s record (a send's), not yet written: it goes with the run's next unit of
        # database work (a park writes it in its own statement), so a send followed by a sleep
        # costs one update of the run, not two. Its effect is keyed by the run and step already
        # (the email row's idempotency key), so a crash before the record loses no guarantee:
        # the replay finds the row and sends nothing.
        self._pending: dict[str, Any] | None = None

    # --- the step log -------------------------------------------------------------------------

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def step(
        self,
        kind: str,
        label: str,
        compute: Callable[[int], Awaitable[Any]],
        *,
        encode: Callable[[Any], dict[str, Any]],
    ) -> dict[str, Any]:
        """Return the recorded result at the next position, or compute, record and return it.

        Nothing a journey does can follow an exit: a step is only recorded while the run is live
        (the record refuses an ended run), a send refuses it under the run's lock, and a trigger,
        whose ingest no record can take back, reads the run's status first.
        """
        seq, recorded = await self._position(kind)
        if recorded is not None:
            return recorded.result
        if kind == Kind.TRIGGER:
            self._require_live(await self.db(steps.run_status, run_id=self.run_id))
        result = encode(await compute(seq))
        return await self.db(
            steps.step_record, run_id=self.run_id, seq=seq, kind=kind, label=label, result=result
        )

    async def db_step(
        self,
        kind: str,
        label: str,
        compute: Callable[[int], Any],
        *,
        encode: Callable[[Any], dict[str, Any]],
    ) -> dict[str, Any]:
        """`step` for a position whose work is synchronous database code (a send): computed in
        one unit of database work, and recorded with the run's next one (`_pending`: the park of
        a sleep that follows writes it in the same statement), so the step costs one hop to a
        database thread and no statement of its own. `compute(seq)` runs with no transaction open.

        Only for work a replay may compute again when it finds no record: a send (its effect is
        keyed by the run and position, so it gets the same row back) or a read (`ctx.history`).
        Every durable thing a run does next (a send, a park, a trigger, its end) records the
        pending step first, so a read whose record was lost was acted on by nothing that lasts,
        and reading again is the first real answer, not a second one."""
        seq, recorded = await self._position(kind)
        if recorded is not None:
            return recorded.result
        result = await self.backend.db(
            _compute_after,
            pending=self._pending_take(),
            run_id=self.run_id,
            seq=seq,
            kind=kind,
            label=label,
            compute=compute,
            encode=encode,
        )
        self._pending = {"run_id": self.run_id, "seq": seq, "kind": kind, "label": label, "result": result}
        return result

    async def db(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """The backend's unit of database work, with the run's unrecorded step (`_pending`)
        recorded first in it; a run that ended meanwhile raises RunNotLive before `fn` runs."""
        pending = self._pending_take()
        if pending is None:
            return await self.backend.db(fn, **kwargs)
        return await self.backend.db(_after_record, pending=pending, strict=True, fn=fn, kwargs=kwargs)

    async def db_ending(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`db` for the run's end (complete, exit, fail): the unrecorded step is written while the
        run is live, and `fn` runs either way."""
        pending = self._pending_take()
        if pending is None:
            return await self.backend.db(fn, **kwargs)
        return await self.backend.db(_after_record, pending=pending, strict=False, fn=fn, kwargs=kwargs)

    async def complete(self) -> None:
        """The run's completion, with its unrecorded last step (a send's) in the same statement;
        a run that ended meanwhile refuses it (RunNotLive)."""
        pending = self._pending_take()
        if pending is None:
            await self.backend.db(services.run_complete, run_id=self.run_id)
        else:
            await self.backend.db(steps.run_complete_after, run_id=self.run_id, pending=pending)

    def _pending_take(self) -> dict[str, Any] | None:
        pending, self._pending = self._pending, None
        return pending

    async def _position(self, kind: str) -> tuple[int, RunStep | None]:
        """Take the next position: its number and what was recorded there (which must be the
        same kind of step, or the journey is not replaying deterministically)."""
        seq = self.next_seq()
        if self._recorded is None:
            _, self._recorded = await self.backend.db(steps.steps_load, run_id=self.run_id)
        recorded = self._recorded.get(seq)
        if recorded is not None and recorded.kind != kind:
            raise NonDeterministicJourney(
                f"{self.journey.id}: step {seq} was a {recorded.kind} ({recorded.label!r}) when the run "
                f"first executed but is a {kind} now; journeys must take the same path on replay"
            )
        return seq, recorded

    def _require_live(self, status: str) -> None:
        if status not in JourneyRun.LIVE_STATUSES:
            raise services.RunNotLive(self.run_id, status)

    # --- durable waits ------------------------------------------------------------------------

    async def sleep(self, duration: Duration, label: str = "") -> SleepResult:
        """Pause for `duration`. The run is `waiting` with `label` as its current node meanwhile."""
        label = label or f"sleep:{duration}"
        seq, recorded = await self._position(Kind.SLEEP)
        span = journey_time(duration)
        if recorded is not None:
            slept_at, deadline = _dt(recorded.result["slept_at"]), _dt(recorded.result["until"])
            assert slept_at and deadline
        else:
            slept_at = self.backend.now()
            deadline = slept_at + span
            await self.backend.db(
                steps.run_park,
                pending=self._pending_take(),
                run_id=self.run_id,
                seq=seq,
                kind=Kind.SLEEP,
                label=label,
                until=deadline,
                result={"slept_at": _iso(slept_at), "until": _iso(deadline)},
            )
        await self.backend.sleep(run_id=self.run_id, seq=seq, duration=span, deadline=deadline, label=label)
        if recorded is not None and "resumed_at" in recorded.result:
            return SleepResult(slept_at=slept_at, resumed_at=_dt(recorded.result["resumed_at"]))  # type: ignore[arg-type]
        resumed_at = self.backend.now()
        await self.db(
            steps.run_resume,
            run_id=self.run_id,
            seq=seq,
            result={"slept_at": _iso(slept_at), "until": _iso(deadline), "resumed_at": _iso(resumed_at)},
        )
        return SleepResult(slept_at=slept_at, resumed_at=resumed_at)

    async def sleep_until(
        self,
        when: datetime | time | None = None,
        label: str = "",
        *,
        local_time: time | str | None = None,
        zone: str | None = None,
    ) -> SleepResult:
        """Pause until a moment, or until the next time of day on the contact's wall clock.

        `ctx.sleep_until(local_time="09:00")` (or `ctx.sleep_until(time(9))`) wakes at the next
        09:00 in the contact's time zone (its `timezone` property, else HOGSEND_DEFAULT_TIMEZONE;
        `zone=` names another), right across daylight-saving changes: a
        time the clocks skip that day is as far past the jump (02:30 → 03:30), a time that happens
        twice is its first occurrence. The moment is fixed when the sleep first runs, so a replay
        wakes at the same one. No time compression: a moment is a moment.
        """
        if isinstance(when, time):
            when, local_time = None, when
        if (when is None) == (local_time is None):
            raise TypeError(
                "sleep_until takes a moment or local_time=, e.g. ctx.sleep_until(local_time='09:00')"
            )
        if local_time is not None:
            at = parse_time_of_day(local_time, field="local_time")
            if zone is None:
                zone = await self.db(contact_timezone_get, contact_id=self.contact_id)
            tz = zone_named(zone)
            when = next_local_time(self.backend.now(), at, tz)
            label = label or f"until:{at:%H:%M} {tz.key}"
        assert when is not None
        remaining = max((when - self.backend.now()).total_seconds(), 0.0)
        scale = journey_time(Duration(1)).total_seconds() or 1.0
        return await self.sleep(Duration(remaining / scale), label or f"until:{when.isoformat()}")

    async def wait_for_event(
        self,
        event: str,
        timeout: Duration,
        label: str = "",
        lookback: Duration | None = None,
        where: WhereSpec = None,
    ) -> WaitResult:
        """Park until this contact sends `event` (matching `where`), or `timeout` passes.

        `lookback` also accepts a matching event that arrived that long before the wait began.
        """
        label = label or f"wait:{event}"
        conditions = parse_where(where)
        seq, recorded = await self._position(Kind.WAIT)
        if recorded is not None:
            result = recorded.result
            if "timed_out" in result and not result.get("durable", True):
                return self._wait_result(result)
            deadline = _dt(result["until"])
            assert deadline
        else:
            now = self.backend.now()
            if lookback is not None:
                earlier = await self.backend.db(
                    selectors.event_find,
                    contact_id=self.contact_id,
                    name=event,
                    where=conditions,
                    since=now - journey_time(lookback),
                    until=now,
                )
                if earlier is not None:
                    result = {"timed_out": False, "durable": False, **earlier}
                    result = await self.db(
                        steps.step_record,
                        run_id=self.run_id,
                        seq=seq,
                        kind=Kind.WAIT,
                        label=label,
                        result=result,
                    )
                    # A replay after a crash mid-wait may find the run still marked waiting.
                    await self.db(steps.run_resume, run_id=self.run_id, seq=seq, result=result)
                    return self._wait_result(result)
            deadline = now + journey_time(timeout)
            result = {"since": _iso(now), "until": _iso(deadline), "durable": True}
            await self.backend.db(
                steps.run_park,
                pending=self._pending_take(),
                run_id=self.run_id,
                seq=seq,
                kind=Kind.WAIT,
                label=label,
                until=deadline,
                result=result,
            )
        arrived = await self.backend.wait_for_event(
            run_id=self.run_id,
            seq=seq,
            contact_id=self.contact_id,
            event=event,
            where=conditions,
            deadline=deadline,
            timeout=journey_time(timeout),
            label=label,
            replay=result if "timed_out" in result else None,
        )
        if "timed_out" in result:
            return self._wait_result(result)
        outcome = {
            **result,
            "timed_out": arrived is None,
            **(arrived or {}),
            "resumed_at": _iso(self.backend.now()),
        }
        await self.db(steps.run_resume, run_id=self.run_id, seq=seq, result=outcome)
        return self._wait_result(outcome)

    async def digest(
        self, key: str | None = None, window: Duration | None = None, label: str = ""
    ) -> DigestResult:
        """Wait until the digest the run's trigger opened closes; return every event it collected.

        The journey declares the digest (`define_journey(..., digest=Digest(key, window=...))`),
        since ingest collects by it; `key` and `window` here, if given, must be the declared ones.
        The close and its items are one recorded step: a replay returns the same items.
        """
        rule = self.journey.digest
        if rule is None:
            raise digests.DigestNotFound(
                f"{self.journey.id}: ctx.digest needs the journey to declare it: "
                "define_journey(..., digest=Digest('<key>', window=hours(1)))"
            )
        if (key is not None and key != rule.key) or (window is not None and window != rule.window):
            raise ValueError(
                f"{self.journey.id}: ctx.digest({key!r}, window={window}) differs from the declared "
                f"digest ({rule.key!r}, window={rule.window}); ingest collects by the declaration"
            )
        label = label or f"digest:{rule.key}"
        seq, recorded = await self._position(Kind.DIGEST)
        if recorded is not None:
            parked = recorded.result
        else:
            parked = await self.db(
                digests.digest_park, run_id=self.run_id, seq=seq, key=rule.key, label=label
            )
        deadline = _dt(parked["until"])
        assert deadline
        # The recorded span, never "what is left": the engine matches a replayed sleep by position.
        await self.backend.sleep(
            run_id=self.run_id,
            seq=seq,
            duration=timedelta(seconds=parked["sleep_seconds"]),
            deadline=deadline,
            label=label,
        )
        outcome = parked
        if "items" not in parked:
            outcome = await self.db(
                digests.digest_close, run_id=self.run_id, seq=seq, parked=parked, max_items=rule.max_items
            )
        return DigestResult(
            key=outcome["key"],
            opened_at=_dt(outcome["opened_at"]),  # type: ignore[arg-type]
            closed_at=_dt(outcome["closed_at"]),  # type: ignore[arg-type]
            count=outcome["count"],
            items=[
                CollectedEvent(
                    event_id=item["event_id"],
                    occurred_at=_dt(item["occurred_at"]),  # type: ignore[arg-type]
                    properties=item["properties"] or {},
                )
                for item in outcome["items"]
            ],
        )

    @staticmethod
    def _wait_result(result: dict[str, Any]) -> WaitResult:
        return WaitResult(
            timed_out=bool(result["timed_out"]),
            properties=result.get("properties") or {},
            occurred_at=_dt(result.get("occurred_at")),
            event_id=result.get("event_id"),
        )

    # --- everything else ----------------------------------------------------------------------

    async def checkpoint(self, label: str) -> None:
        """Mark progress: the run's current node becomes `label`."""
        seq, recorded = await self._position(Kind.CHECKPOINT)
        if recorded is not None:
            return
        await self.db(steps.run_checkpoint, run_id=self.run_id, seq=seq, label=label)

    async def now(self) -> datetime:
        """The current time, fixed at first execution so replays see the same moment."""
        result = await self.step(Kind.NOW, "now", self._now, encode=lambda now: {"now": _iso(now)})
        return _dt(result["now"])  # type: ignore[return-value]

    async def _now(self, seq: int) -> datetime:
        return self.backend.now()

    async def trigger(
        self,
        event: str,
        user_id: str | None = None,
        properties: dict[str, Any] | None = None,
        user_email: str | None = None,
    ) -> str:
        """Ingest an event through the full pipeline (it can start journeys and exit runs).

        Returns the event id. The idempotency key is the run and step, so a replay or a retry
        never ingests it twice.
        """
        from contacts.ingest import event_ingest

        async def ingest(seq: int) -> Any:
            return await self.backend.db(
                event_ingest,
                name=event,
                user_id=user_id or self.user.id,
                email=user_email,
                properties=properties or {},
                idempotency_key=f"journey-run:{self.run_id}:{seq}",
                source="journey",
            )

        result = await self.step(
            Kind.TRIGGER,
            event,
            ingest,
            encode=lambda r: {
                "event_id": str(r.event.id),
                "exited_run_ids": [str(i) for i in r.exited_run_ids],
            },
        )
        return result["event_id"]

    async def variant(self, key: str, arms: Sequence[str], weights: Sequence[float] | None = None) -> str:
        """The contact's arm of the experiment `key`: `await ctx.variant("subject", ["plain", "bold"])`.

        The same contact always gets the same arm in this journey (a weighted bucket of the hash of
        journey, key and contact; `weights` default to equal). The arm is recorded as a step, so a
        replay returns it even if the weights changed since; asking for the same key again later
        in the run returns the same arm. The run's exposure is recorded once per key for the
        readout. Bad arms or weights raise ValueError.
        """
        names, shares = variant_arms_check(key, arms, weights)
        seq, recorded = await self._position(Kind.VARIANT)
        if recorded is not None:
            self._arms[key] = str(recorded.result["arm"])
            return self._arms[key]
        # A key asked again later in the run keeps the arm the run was exposed to.
        arm = self._arms.get(key) or variant_pick(
            journey_id=self.journey.id, key=key, contact_id=self.contact_id, arms=names, shares=shares
        )
        self._arms[key] = await self.db(
            steps.variant_record, run_id=self.run_id, seq=seq, key=key, arm=arm, arms=names
        )
        return self._arms[key]

    async def exit(self, reason: str = "journey_exit") -> None:
        """Stop the journey here; the run is marked exited with `reason`."""
        raise JourneyExit(reason)
