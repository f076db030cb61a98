"""The virtual-time harness: test a week-long journey in milliseconds.

Real database, real guards, real send pipeline; only the clock (time-machine) and the engine are
simulated. The harness plays the engine's part: it routes ingested events to journeys and tasks,
parks sleeps and waits, and wakes them as you move the clock.

```
def test_nudge_when_feature_unused(journey_harness):
    journey_harness.start("activation-welcome", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(2))
    assert journey_harness.templates_sent_to("u1@example.com") == ["activation/welcome", "activation/nudge"]
```

Held sends (quiet hours in the recipient's time zone, deferred frequency caps) go out when the
virtual clock passes their `held_until`, as the release task would; a journey waiting on one
resumes after it went.

Use it as the `journey_harness` pytest fixture (`pytest_plugins = ["journeys.testing"]`) or as a
context manager. Journeys run as plain coroutines stepped by the harness, so a journey must wait
only through `ctx` (no bare `asyncio.sleep` or `gather`).
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import uuid
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import time_machine
from django.db import transaction
from django.utils import timezone

from contacts.ingest import IngestResult, event_ingest
from contacts.models import Contact, Event
from contacts.outbox import event_engine_payload
from emails.models import EmailLog
from emails.policy import send_policy
from emails.services import email_held_release
from journeys.conditions import Condition, all_match
from journeys.definition import DurableTask, Journey
from journeys.dispatch import install_dispatcher
from journeys.durations import Duration, journey_time
from journeys.models import Digest, EnrollmentSkip, JourneyRun
from journeys.registry import registry
from journeys.runner import journey_execute, task_execute
from journeys.selectors import event_as_wait_result

T = TypeVar("T")
DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class _Park:
    """What a parked journey is waiting for; yielded up to the harness from inside the journey."""

    deadline: datetime
    run_id: uuid.UUID
    label: str
    event: str | None = None
    contact_id: uuid.UUID | None = None
    where: tuple[Condition, ...] = ()

    def __await__(self) -> Generator[_Park, Any, Any]:
        return (yield self)

    def accepts(self, event: Event) -> bool:
        return (
            self.event == event.name
            and self.contact_id == event.contact_id
            and all_match(self.where, event.properties)
        )


@dataclass(frozen=True)
class TaskFailure:
    """A custom task that raised on every attempt the engine would have made."""

    task: str
    payload: dict[str, Any]
    error: BaseException | None


class _SimulatedRun:
    """One coroutine (a journey run or a task) stepped by the harness in its own context."""

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        engine_run_id: str,
        journey: Journey | None,
        payload: dict[str, Any],
        order: int = 0,
        on_park: Callable[[_SimulatedRun], None] | None = None,
    ) -> None:
        self.coro = coro
        self.order = order  # spawn order: ties between due runs go to the one spawned first
        self.on_park = on_park
        self.engine_run_id = engine_run_id
        self.journey = journey
        self.payload = payload
        self.context = contextvars.copy_context()
        self.parked: _Park | None = None
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def step(self, value: Any = None) -> None:
        self.parked = None
        try:
            self.parked = self.context.run(self.coro.send, value)
        except StopIteration as finished:
            self.done, self.result = True, finished.value
        finally:
            if self.parked is not None and self.on_park is not None:
                self.on_park(self)

    def kill(self) -> None:
        """Stop the coroutine where it stands, as a crash or a cancel would."""
        if not self.done:
            self.context.run(self.coro.close)
            self.done, self.parked = True, None


class HarnessBackend:
    """The harness's engine underneath `ctx`: database calls run inline, waits park."""

    def __init__(self) -> None:
        # (run, step) -> matching events already stored when the wait first parked.
        self.waits_began: dict[tuple[uuid.UUID, int], set[uuid.UUID]] = {}

    def now(self) -> datetime:
        return timezone.now()

    async def db(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        return fn(**kwargs)

    async def sleep(
        self, *, run_id: uuid.UUID, seq: int, duration: timedelta, deadline: datetime, label: str
    ) -> None:
        if timezone.now() < deadline:
            await _Park(deadline=deadline, run_id=run_id, label=label)

    async def wait_for_event(
        self,
        *,
        run_id: uuid.UUID,
        seq: int,
        contact_id: uuid.UUID,
        event: str,
        where: tuple[Condition, ...],
        deadline: datetime,
        timeout: timedelta,
        label: str,
        replay: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        if replay is not None:
            return None
        # As the engine's wait does, consider every matching event received since the wait
        # began: one that arrived while a crashed worker was down is not lost on resume. The
        # clock stands still between steps, so what was already stored when the wait first
        # parked came before it, as it would on the engine.
        since = deadline - timeout
        arrived = [
            e
            for e in Event.objects.filter(
                contact_id=contact_id,
                name=event,
                received_at__gte=since,
                # One that came after the deadline lost the race to the timeout.
                received_at__lte=min(timezone.now(), deadline),
            ).order_by("received_at", "occurred_at")
            if all_match(where, e.properties)
        ]
        before = self.waits_began.setdefault((run_id, seq), {e.id for e in arrived})
        for earlier in arrived:
            if earlier.id not in before:
                return event_as_wait_result(earlier)
        if timezone.now() >= deadline:
            return None
        return await _Park(
            deadline=deadline, run_id=run_id, label=label, event=event, contact_id=contact_id, where=where
        )


class JourneyHarness:
    """The simulated engine and clock. See the module docstring for an example."""

    def __init__(
        self,
        *,
        start: datetime = DEFAULT_START,
        journeys: Iterable[str] | None = None,
        backend: HarnessBackend | None = None,
        before_wake: Callable[[], None] | None = None,
    ) -> None:
        """`before_wake` is called whenever the clock's move is about to wake a run or release a
        held send (a caller that keeps events aside brings them in before anything reads them)."""
        self._before_wake = before_wake
        self._traveller = time_machine.travel(start, tick=False)
        self._clock = self._traveller.start()
        self._previous_dispatcher = install_dispatcher(self)
        self._only = set(journeys) if journeys is not None else None
        self._backend = backend or HarnessBackend()
        self._runs: list[_SimulatedRun] = []
        # Indexes of the parked runs, so routing an event and moving the clock cost the same at
        # any number of runs. Entries go stale when a run moves on; each use checks `run.parked`.
        self._spawned = 0
        self._pushes = itertools.count()  # keeps heap entries of equal deadline and run apart
        self._deadlines: list[tuple[datetime, int, int, _Park, _SimulatedRun]] = []
        self._waits: dict[tuple[uuid.UUID | None, str], dict[int, _SimulatedRun]] = {}
        self._by_run: dict[uuid.UUID, dict[int, _SimulatedRun]] = {}
        # (events as ids to read, or as stored rows in hand; runs they exited)
        self._inbox: list[tuple[list[Any], list[uuid.UUID]]] = []
        self._crashed: dict[str, _SimulatedRun] = {}
        self._settling = False
        self.task_failures: list[TaskFailure] = []

    def close(self) -> None:
        for run in self._runs:
            run.kill()
        install_dispatcher(self._previous_dispatcher)
        self._traveller.stop()

    def __enter__(self) -> JourneyHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the dispatcher's part ----------------------------------------------------------------

    def after_ingest(self, *, event_ids: Sequence[uuid.UUID], exited_run_ids: Sequence[uuid.UUID]) -> None:
        """Whoever ingested (the HTTP API, code under test, a journey): route it now, at the
        virtual time it was ingested, as the engine would."""
        self._inbox.append((list(event_ids), list(exited_run_ids)))
        self._settle()

    def deliver(self, *, events: Sequence[Event], exited_run_ids: Sequence[uuid.UUID]) -> None:
        """Route events the caller just ingested with `dispatch=False` (rows in hand, each with its
        contact): `after_ingest` without reading them back."""
        self._inbox.append((list(events), list(exited_run_ids)))
        self._settle()

    def cancel_runs(self, *, run_ids: Sequence[uuid.UUID]) -> Any:
        """An operator cancel: stop the runs' coroutines, as the engine's cancel would."""
        from journeys.actions import Handoff

        self._inbox.append(([], list(run_ids)))
        self._settle()
        return Handoff(done=True)

    def retry_run(self, *, run_id: uuid.UUID) -> Any:
        """An operator retry: run the journey again from the top; the step log skips what it did."""
        from journeys.actions import Handoff

        run = JourneyRun.objects.select_related("trigger_event__contact").get(pk=run_id)
        journey = registry.get(run.journey_id)
        if journey is None or run.trigger_event is None or not run.engine_run_id:
            return Handoff(done=True, problem="the harness cannot replay a run without its trigger")
        self._spawn_journey(journey, event_engine_payload(run.trigger_event), engine_run_id=run.engine_run_id)
        self._settle()
        return Handoff(done=True)

    def _settle(self) -> None:
        """Route everything ingested so far, including what the routed runs ingest in turn."""
        if self._settling:
            return
        self._settling = True
        try:
            while self._inbox:
                event_ids, exited = self._inbox.pop(0)
                for run_id in exited:
                    for run in list(self._by_run.pop(run_id, {}).values()):
                        if run.journey is not None and run.parked and run.parked.run_id == run_id:
                            run.kill()
                in_hand = bool(event_ids) and isinstance(event_ids[0], Event)
                events = (
                    event_ids
                    if in_hand
                    else Event.objects.filter(pk__in=event_ids)
                    .select_related("contact")
                    .order_by("received_at")
                )
                for event in events:
                    self._route(event)
        finally:
            self._settling = False

    def _route(self, event: Event) -> None:
        """Deliver one event to every parked wait, journey and task it concerns. Each delivery
        stands alone, as on the engine: one that raises fails alone and the others still happen."""
        # In spawn order, each run parked when the delivery began considered once, as it stands
        # when its turn comes (an earlier delivery may have moved it on).
        spawned_before, visited = self._spawned, -1
        waiting = self._waits.get((event.contact_id, event.name), {})
        while True:
            turn = [
                r
                for order, r in list(waiting.items())
                if visited < order < spawned_before and self._waits_for(r, event)
            ]
            if not turn:
                break
            run = min(turn, key=lambda r: r.order)
            visited = run.order
            self._step(run, event_as_wait_result(event))
        payload = event_engine_payload(event)
        for journey in registry.triggered_by(event.name):
            if self._only is None or journey.id in self._only:
                self._spawn_journey(journey, payload, engine_run_id=f"sim-{uuid.uuid4()}")
        for task in registry.tasks_for(event.name):
            self._run_task(task, payload)

    def _new_run(self, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> _SimulatedRun:
        run = _SimulatedRun(coro, order=self._spawned, on_park=self._parked, **kwargs)
        self._spawned += 1
        self._runs.append(run)
        return run

    def _parked(self, run: _SimulatedRun) -> None:
        park = run.parked
        assert park is not None
        heapq.heappush(self._deadlines, (park.deadline, run.order, next(self._pushes), park, run))
        if park.event:
            self._waits.setdefault((park.contact_id, park.event), {})[run.order] = run
        self._by_run.setdefault(park.run_id, {})[run.order] = run

    @staticmethod
    def _waits_for(run: _SimulatedRun, event: Event) -> bool:
        return run.parked is not None and bool(run.parked.event) and run.parked.accepts(event)

    def _run_task(self, task: DurableTask, payload: dict[str, Any]) -> None:
        """A custom task, with the engine's retries: an attempt that raises is retried, up to
        `task.retries` times; the last failure is kept in `task_failures`."""
        for attempt in range(task.retries + 1):
            run = self._new_run(
                task_execute(task=task, payload=payload, backend=self._backend),
                engine_run_id=f"sim-{uuid.uuid4()}",
                journey=None,
                payload=payload,
            )
            if self._step(run) is None:
                return
            if attempt == task.retries:
                self.task_failures.append(TaskFailure(task=task.name, payload=payload, error=run.error))

    def _spawn_journey(self, journey: Journey, payload: dict[str, Any], *, engine_run_id: str) -> None:
        coro = journey_execute(
            journey=journey, payload=payload, engine_run_id=engine_run_id, backend=self._backend
        )
        run = self._new_run(coro, engine_run_id=engine_run_id, journey=journey, payload=payload)
        self._step(run)

    def _step(self, run: _SimulatedRun, value: Any = None) -> BaseException | None:
        """Step one run in a savepoint; what it ingests is routed once it yields.

        Returns what it raised, if anything: a database error inside it is rolled back to the
        savepoint and never spoils the caller's transaction (an ingest that routed to it).
        """
        settling, self._settling = self._settling, True
        try:
            with transaction.atomic():
                run.step(value)
        except Exception as error:  # the engine fails that run alone, too
            run.done, run.parked, run.error = True, None, error
        finally:
            self._settling = settling
        if not settling:
            self._settle()
        return run.error

    # --- what a test does ---------------------------------------------------------------------

    def now(self) -> datetime:
        return timezone.now()

    def emit(
        self,
        event: str,
        *,
        user_id: str,
        email: str | None = None,
        properties: dict[str, Any] | None = None,
        contact_properties: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        at: datetime | Duration | timedelta | None = None,
    ) -> IngestResult:
        """Ingest an event through the real pipeline and let the engine route it.

        `at` is when the event occurred: a moment, or an offset from now (negative for the
        past). A moment still ahead moves the clock there first (waking whatever falls due on
        the way), so the event is ingested then; a moment already past is a late event, ingested
        now with that timestamp (its `occurred_at`), as a client SDK's delayed batch would be.
        """
        occurred_at = self._moment(at) if at is not None else None
        if occurred_at is not None and occurred_at > timezone.now():
            self.advance(occurred_at - timezone.now())
        result = event_ingest(
            name=event,
            user_id=user_id,
            email=email,
            properties=properties,
            contact_properties=contact_properties,
            idempotency_key=idempotency_key,
            occurred_at=occurred_at,
        )
        self._settle()
        return result

    def _moment(self, at: datetime | Duration | timedelta) -> datetime:
        if isinstance(at, datetime):
            return at
        return timezone.now() + (journey_time(at) if isinstance(at, Duration) else at)

    def start(
        self,
        journey_id: str,
        *,
        user_id: str,
        email: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> JourneyRun | None:
        """Send the journey's trigger event for a contact; returns the run it made, if any."""
        journey = registry.get(journey_id)
        if journey is None:
            raise LookupError(f"no journey {journey_id!r}; known: {', '.join(j.id for j in registry.all())}")
        self.emit(
            journey.trigger.event,
            user_id=user_id,
            email=email or f"{user_id}@example.com",
            properties=properties,
        )
        return self.run(journey_id, user_id)

    def advance(self, duration: Duration | timedelta) -> None:
        """Move the clock forward, waking every sleep and timing out every wait that falls due."""
        span = journey_time(duration) if isinstance(duration, Duration) else duration
        target = timezone.now() + span
        heap = self._deadlines
        while True:
            while heap and heap[0][4].parked is not heap[0][3]:  # woken, killed or moved on since
                heapq.heappop(heap)
            due = heap[0][0] if heap and heap[0][0] <= target else None
            held = self._next_held(until=due or target)
            if held is not None:  # a held send goes out before a run that wakes at its moment
                email_id, held_until = held
                self._clock.move_to(max(held_until, timezone.now()))
                if self._before_wake is not None:
                    self._before_wake()
                with transaction.atomic():
                    email_held_release(email_id=email_id)
                continue
            if due is None:
                break
            deadline, _, _, _, run = heapq.heappop(heap)
            self._clock.move_to(max(deadline, timezone.now()))
            if self._before_wake is not None:
                self._before_wake()
            self._step(run, None)
        self._clock.move_to(target)

    def _next_held(self, *, until: datetime) -> tuple[uuid.UUID, datetime] | None:
        """The earliest held send due by `until`: the release task's part, at its eta. Without a
        send-time policy nothing is ever held, and the clock moves without asking."""
        if not send_policy().active:
            return None
        return (
            EmailLog.objects.filter(status=EmailLog.Status.HELD, held_until__lte=until)
            .order_by("held_until", "id")
            .values_list("id", "held_until")
            .first()
        )

    def crash(self, run: JourneyRun) -> None:
        """Kill the run's coroutine where it stands, as a worker crash would; `resume` restarts it."""
        current = self._executing(run)
        if current is None:
            raise LookupError(f"run {run.id} is not executing in this harness")
        current.kill()
        self._crashed[run.engine_run_id] = current

    def resume(self, run: JourneyRun) -> None:
        """Execute a crashed run's journey again from the top, as a new worker would."""
        crashed = self._crashed.pop(run.engine_run_id)
        assert crashed.journey is not None
        self._spawn_journey(crashed.journey, crashed.payload, engine_run_id=crashed.engine_run_id)

    def replay(self, run: JourneyRun) -> None:
        """Crash and resume at once: the function runs again from the top (eviction, restart)."""
        self.crash(run)
        self.resume(run)

    def deploy(self, *journeys: Journey) -> int:
        """Ship new code for these journeys, as a deploy does: each replaces the registered journey
        of its id, and every run of it executing now runs again from the top on the new code (the
        engine replays parked runs on the new worker; a run on a kept version replays on that).
        Returns how many runs were replayed."""
        replayed = 0
        for journey in journeys:
            kept = registry.kept(journey.id).values()  # earlier versions the code keeps stay kept
            registry.unregister(journey.id)
            registry.register(journey)
            registry.keep(*kept)
            for run in [r for r in self._runs if r.journey is not None and r.journey.id == journey.id]:
                if run.done:
                    continue
                run.kill()
                self._spawn_journey(journey, run.payload, engine_run_id=run.engine_run_id)
                replayed += 1
        return replayed

    def _executing(self, run: JourneyRun) -> _SimulatedRun | None:
        return next((r for r in self._runs if r.engine_run_id == run.engine_run_id and not r.done), None)

    def replay_all(self) -> int:
        runs = [r for r in self._runs if r.journey is not None and not r.done]
        for run in runs:
            self.replay(JourneyRun.objects.get(engine_run_id=run.engine_run_id))
        return len(runs)

    # --- what a test reads --------------------------------------------------------------------

    def run(self, journey_id: str, user_id: str) -> JourneyRun | None:
        return (
            JourneyRun.objects.filter(journey_id=journey_id, contact__user_id=user_id)
            .order_by("-entered_at")
            .first()
        )

    def skip_reasons(self, journey_id: str, user_id: str) -> list[str]:
        return list(
            EnrollmentSkip.objects.filter(journey_id=journey_id, contact__user_id=user_id)
            .order_by("created_at", "id")
            .values_list("reason", flat=True)
        )

    def digests(self, journey_id: str, user_id: str) -> list[tuple[str, list[dict[str, Any]]]]:
        """(status, collected events' properties oldest first) of each digest of a contact, oldest
        first: what a digest journey gathered, open or closed."""
        found = Digest.objects.filter(journey_id=journey_id, contact__user_id=user_id).order_by(
            "opened_at", "id"
        )
        return [
            (
                digest.status,
                [
                    item.event.properties
                    for item in digest.items.select_related("event").order_by(
                        "event__occurred_at", "event__received_at", "id"
                    )
                ],
            )
            for digest in found
        ]

    def emails(self, to: str | None = None) -> list[EmailLog]:
        logs = EmailLog.objects.order_by("created_at", "id")
        return list(logs.filter(to_email=to) if to else logs)

    def held(self, to: str | None = None) -> list[EmailLog]:
        """Sends the policy holds right now (each with its `held_until`)."""
        return [log for log in self.emails(to) if log.status == EmailLog.Status.HELD]

    def templates_sent_to(self, to: str) -> list[str]:
        """Templates actually sent to an address (suppressed or failed ones are not sent)."""
        return [log.template for log in self.emails(to) if log.status == EmailLog.Status.SENT]

    def triggered(self, event: str | None = None) -> list[Event]:
        """Events journeys fired with `ctx.trigger`, oldest first."""
        events = Event.objects.filter(source=Event.Source.JOURNEY).order_by("received_at")
        return list(events.filter(name=event) if event else events)

    def contact(self, user_id: str) -> Contact:
        return Contact.objects.get(user_id=user_id)

    def parked(self) -> list[tuple[str, str, datetime]]:
        """(journey id, label, deadline) of every run parked right now."""
        return [
            (r.journey.id if r.journey else "task", r.parked.label, r.parked.deadline)
            for r in self._runs
            if r.parked is not None
        ]


def cel_matches(expression: str, properties: dict[str, Any], *, contact_id: str = "") -> bool:
    """Evaluate a wait's CEL expression as the engine would, over a pushed event's payload.

    Uses `cel-python` (a test dependency). An expression that errors counts as no match, as on
    the engine; the expressions Hogsend writes never error.
    """
    import celpy

    env = celpy.Environment()
    program = env.program(env.compile(expression))
    payload = {"contact_id": contact_id, "properties": properties}
    try:
        result = program.evaluate({"input": celpy.json_to_cel(payload)})
    except celpy.CELEvalError:
        return False
    return isinstance(result, celpy.celtypes.BoolType) and bool(result)


@contextlib.contextmanager
def registered(*items: Journey | DurableTask) -> Generator[Callable[..., Any], None, None]:
    """Register journeys or tasks for the duration of a `with` block (and any added through the
    callable it yields); the registry is as it was afterwards."""
    added: list[Journey | DurableTask] = []

    def register(*more: Journey | DurableTask) -> Any:
        registry.register(*more)
        added.extend(more)
        return more[0] if len(more) == 1 else more

    if items:
        register(*items)
    try:
        yield register
    finally:
        for item in added:
            if isinstance(item, Journey):
                registry.unregister(item.id)
            else:
                registry._tasks.pop(item.name, None)


__all__ = [
    "DEFAULT_START",
    "HarnessBackend",
    "JourneyHarness",
    "TaskFailure",
    "cel_matches",
    "registered",
]

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is a test dependency
    pass
else:

    @pytest.fixture
    def journey_harness(db: Any) -> Generator[JourneyHarness, None, None]:
        harness = JourneyHarness()
        yield harness
        harness.close()

    @pytest.fixture
    def journey_register() -> Generator[Callable[..., Any], None, None]:
        """Register ad-hoc journeys or tasks for one test; they are removed afterwards.

        ```
        def test_my_journey(journey_register, journey_harness):
            journey_register(my_journey)          # returns what it registered
        ```
        """
        with registered() as register:
            yield register
