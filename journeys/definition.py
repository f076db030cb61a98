"""`define_journey`: a journey is metadata plus an ordinary `async (user, ctx)` function."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contacts.categories import TRANSACTIONAL
from journeys.conditions import Condition, WhereSpec, all_match, parse_where
from journeys.durations import Duration, days

if TYPE_CHECKING:
    from journeys.context import JourneyContext, JourneyUser

RunFunction = Callable[["JourneyUser", "JourneyContext"], Awaitable[Any]]
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class JourneyDefinitionError(ValueError):
    """A journey's metadata does not make sense; raised at import time, not at 3am."""


class EntryLimit(str, enum.Enum):
    ONCE = "once"
    ONCE_PER_PERIOD = "once_per_period"
    UNLIMITED = "unlimited"


@dataclass(frozen=True)
class EventRule:
    """An event name plus conditions on its properties (a trigger or an exit rule)."""

    event: str
    where: tuple[Condition, ...] = ()

    def matches(self, event_name: str, properties: dict[str, Any]) -> bool:
        return event_name == self.event and all_match(self.where, properties)


def on(event: str, where: WhereSpec = None) -> EventRule:
    """`trigger=on(Events.USER_SIGNED_UP, where=lambda b: b.prop("plan").eq("enterprise"))`."""
    return EventRule(event=event, where=parse_where(where))


def _rule(spec: str | EventRule | dict[str, Any]) -> EventRule:
    if isinstance(spec, EventRule):
        return spec
    if isinstance(spec, str):
        return EventRule(spec)
    if isinstance(spec, dict) and "event" in spec:
        return on(spec["event"], spec.get("where"))
    raise JourneyDefinitionError(f"not an event rule: {spec!r} (use an event name or on(event, where=...))")


@dataclass(frozen=True, init=False)
class Goal:
    """A journey's conversion: `goal=Goal(Events.PLAN_UPGRADED, where=..., within=days(7))`.

    A run converts when the contact's `event` (matching `where`, the conditions of
    journeys/conditions.py) occurs within `within` after the run's trigger, whatever the run's
    status by then; a run converts at most once.
    """

    event: str
    where: tuple[Condition, ...]
    within: Duration

    def __init__(self, event: str, *, where: WhereSpec = None, within: Duration | None = None) -> None:
        if not isinstance(event, str) or not event:
            raise JourneyDefinitionError(f"a goal needs an event name, not {event!r}")
        window = within if within is not None else days(7)
        if not isinstance(window, Duration) or window.seconds <= 0:
            raise JourneyDefinitionError(f"goal {event!r}: within must be a positive duration (days(7))")
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "where", parse_where(where))
        object.__setattr__(self, "within", window)

    def matches(self, event_name: str, properties: dict[str, Any]) -> bool:
        return event_name == self.event and all_match(self.where, properties)


@dataclass(frozen=True)
class Digest:
    """A journey that collects: its trigger events, per contact, over a window, into one run.

    The first matching event of a contact opens a digest (and starts the run); those that arrive
    while it is open are collected into it at ingest instead of starting runs of their own;
    `await ctx.digest(key)` waits until the window closes and returns every collected event.
    A digest is declared on the journey, not only called in its code, because ingest decides where
    an event goes from the definitions in memory, before any run executes (journeys/digests.py).
    """

    key: str
    window: Duration
    # Items the run's recorded step and the email carry; the digest counts every one it collected.
    max_items: int = 100


@dataclass(frozen=True)
class Journey:
    id: str
    name: str
    trigger: EventRule
    run: RunFunction
    entry_limit: EntryLimit = EntryLimit.ONCE
    entry_period: Duration | None = None
    exit_on: tuple[EventRule, ...] = ()
    suppress: Duration = field(default_factory=lambda: Duration(0))
    category: str = "journey"
    description: str = ""
    enabled: bool = True
    # The share of entrants held out of every send (0.1 = 10 %), for measuring the journey's lift.
    holdout: float = 0.0
    goal: Goal | None = None
    digest: Digest | None = None
    # Under a frequency cap (HOGSEND_FREQUENCY_CAPS): a higher priority takes the slot of a lower
    # held send; "defer" holds a capped send to the next free slot, "skip" skips it.
    priority: int = 0
    on_cap: str = "skip"

    def __str__(self) -> str:
        return self.id

    def exit_rule_for(self, event_name: str, properties: dict[str, Any]) -> EventRule | None:
        return next((r for r in self.exit_on if r.matches(event_name, properties)), None)


def define_journey(
    *,
    id: str,
    name: str,
    trigger: str | EventRule | dict[str, Any],
    entry_limit: str | EntryLimit = EntryLimit.ONCE,
    entry_period: Duration | None = None,
    exit_on: Iterable[str | EventRule | dict[str, Any]] = (),
    suppress: Duration | None = None,
    category: str = "journey",
    description: str = "",
    enabled: bool = True,
    holdout: float = 0.0,
    goal: Goal | None = None,
    digest: Digest | None = None,
    priority: int = 0,
    on_cap: str = "skip",
) -> Callable[[RunFunction], Journey]:
    """Decorate an `async def run(user, ctx)` to make it a journey.

    ```
    @define_journey(id="activation-welcome", name="Activation — Welcome Series",
                    trigger=Events.USER_CREATED, suppress=hours(12), exit_on=[Events.USER_DELETED])
    async def activation_welcome(user, ctx): ...
    ```
    """
    if not _ID_PATTERN.match(id):
        raise JourneyDefinitionError(
            f"journey id {id!r} must be lowercase letters, digits, '-' or '_' (at most 100)"
        )
    try:
        limit = EntryLimit(entry_limit)
    except ValueError:
        raise JourneyDefinitionError(
            f"{id}: entry_limit {entry_limit!r} must be one of " + ", ".join(e.value for e in EntryLimit)
        ) from None
    if limit is EntryLimit.ONCE_PER_PERIOD and entry_period is None:
        raise JourneyDefinitionError(f"{id}: entry_limit 'once_per_period' needs an entry_period")
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not math.isfinite(holdout):
        raise JourneyDefinitionError(f"{id}: holdout must be a share between 0 and 1 (0.1 for 10 %)")
    if not 0 <= holdout < 1:
        raise JourneyDefinitionError(
            f"{id}: holdout {holdout!r} must be at least 0 and below 1 (0.1 for 10 %)"
        )
    if holdout and category == TRANSACTIONAL:
        raise JourneyDefinitionError(
            f"{id}: transactional mail is never held out; drop holdout or the category"
        )
    if goal is not None and not isinstance(goal, Goal):
        raise JourneyDefinitionError(f"{id}: goal must be a Goal(event, where=..., within=...)")
    if on_cap not in ("skip", "defer"):
        raise JourneyDefinitionError(f"{id}: on_cap {on_cap!r} must be 'skip' or 'defer'")
    if not isinstance(priority, int) or isinstance(priority, bool) or not -100 <= priority <= 100:
        raise JourneyDefinitionError(
            f"{id}: priority must be a whole number from -100 to 100; got {priority!r}"
        )
    trigger_rule = _rule(trigger)
    exit_rules = tuple(_rule(spec) for spec in exit_on)
    if digest is not None:
        _check_digest(id, digest, limit)

    def decorate(fn: RunFunction) -> Journey:
        import inspect

        if not inspect.iscoroutinefunction(fn):
            raise JourneyDefinitionError(f"{id}: the run function must be `async def`")
        return Journey(
            id=id,
            name=name,
            description=description or (inspect.getdoc(fn) or ""),
            enabled=enabled,
            trigger=trigger_rule,
            entry_limit=limit,
            entry_period=entry_period,
            exit_on=exit_rules,
            suppress=suppress or Duration(0),
            category=category,
            holdout=float(holdout),
            goal=goal,
            priority=priority,
            on_cap=on_cap,
            run=fn,
            digest=digest,
        )

    return decorate


def _check_digest(journey_id: str, digest: Digest, limit: EntryLimit) -> None:
    if not isinstance(digest, Digest):
        raise JourneyDefinitionError(
            f"{journey_id}: digest must be Digest(key, window=...), e.g. Digest('comments', window=hours(1))"
        )
    if not _ID_PATTERN.match(digest.key):
        raise JourneyDefinitionError(
            f"{journey_id}: digest key {digest.key!r} must be lowercase letters, digits, '-' or '_'"
        )
    if not isinstance(digest.window, Duration) or digest.window.seconds <= 0:
        raise JourneyDefinitionError(
            f"{journey_id}: digest window must be a positive duration, e.g. hours(1)"
        )
    if not 1 <= digest.max_items <= 1000:
        raise JourneyDefinitionError(f"{journey_id}: digest max_items must be between 1 and 1000")
    if limit is EntryLimit.ONCE:
        # Each digest is one run: with "once" a contact would get one digest ever.
        raise JourneyDefinitionError(
            f"{journey_id}: a digest journey runs once per digest; set entry_limit='unlimited' "
            "(or 'once_per_period' for at most one digest per period)"
        )


@dataclass(frozen=True)
class DurableTask:
    """A custom durable task beside the journeys, started by events (the CSM alert task)."""

    name: str
    on_events: tuple[str, ...]
    fn: Callable[[dict[str, Any]], Awaitable[Any]]
    retries: int = 2
    timeout: Duration = field(default_factory=lambda: Duration(15 * 60))


def durable_task(
    *, name: str, on_events: Iterable[str], retries: int = 2, timeout: Duration | None = None
) -> Callable[[Callable[[dict[str, Any]], Awaitable[Any]]], DurableTask]:
    def decorate(fn: Callable[[dict[str, Any]], Awaitable[Any]]) -> DurableTask:
        return DurableTask(
            name=name,
            on_events=tuple(on_events),
            fn=fn,
            retries=retries,
            timeout=timeout or Duration(15 * 60),
        )

    return decorate
