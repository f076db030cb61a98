"""Experiments inside journeys: variants (`ctx.variant`), holdouts, and goal conversions.

Every assignment is a pure function of ids, so it is the same in every process and on every
replay: an arm is a weighted bucket of the hash of (journey, key, contact); the holdout is the
bucket of (journey, contact) below the journey's `holdout` share; a run that is not held out but
whose contact is in the global control group (emails.control_group) is marked so. A run records the arm it got
as a step, so a replay returns it even after the weights change, and an exposure row once per
run and key, which the readouts (journeys.readouts) count.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection

from contacts.categories import UnknownCategory, category_get
from contacts.models import Event
from emails.control_group import in_control_group
from journeys.definition import Journey
from journeys.durations import journey_time

_SCALE = float(2**64)


def unit_hash(*parts: str) -> float:
    """A number in [0, 1) from the parts, stable everywhere (sha256, not Python's salted hash)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def variant_arms_check(key: Any, arms: Any, weights: Any) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The arms and their weights as shares, or a ValueError saying what to change."""
    if not isinstance(key, str) or not key.strip() or len(key) > 100:
        raise ValueError(
            f"ctx.variant: the key must be a non-empty name of at most 100 characters, not {key!r}"
        )
    if isinstance(arms, str) or not isinstance(arms, Sequence):
        raise ValueError(f"ctx.variant({key!r}): arms must be a list of names, like ['control', 'short']")
    names = tuple(arms)
    if len(names) < 2:
        raise ValueError(f"ctx.variant({key!r}): give at least two arms, got {list(names)!r}")
    for arm in names:
        if not isinstance(arm, str) or not arm.strip() or len(arm) > 100:
            raise ValueError(
                f"ctx.variant({key!r}): every arm must be a non-empty name of at most 100 characters, not {arm!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"ctx.variant({key!r}): arm names must be unique, got {list(names)!r}")
    if weights is None:
        return names, tuple(1 / len(names) for _ in names)
    if isinstance(weights, str) or not isinstance(weights, Sequence) or len(weights) != len(names):
        raise ValueError(f"ctx.variant({key!r}): give one weight per arm ({len(names)}), got {weights!r}")
    for weight in weights:
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(
                f"ctx.variant({key!r}): weights must be finite numbers of at least 0, not {weight!r}"
            )
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(f"ctx.variant({key!r}): at least one weight must be above 0")
    return names, tuple(w / total for w in weights)


def variant_pick(
    *, journey_id: str, key: str, contact_id: UUID | str, arms: Sequence[str], shares: Sequence[float]
) -> str:
    """The contact's arm: the weighted bucket its hash falls in."""
    point = unit_hash("variant", journey_id, key, str(contact_id))
    edge = 0.0
    for arm, share in zip(arms, shares, strict=True):
        edge += share
        if point < edge:
            return arm
    return next(arm for arm, share in zip(reversed(arms), reversed(shares), strict=True) if share > 0)


def is_held_out(*, journey: Journey, contact_id: UUID | str) -> bool:
    """Whether the contact is in the journey's holdout (the same answer at every entry)."""
    return bool(journey.holdout) and unit_hash("holdout", journey.id, str(contact_id)) < journey.holdout


def run_in_control_group(*, journey: Journey, contact_id: UUID | str) -> bool:
    """Whether a run of this journey enrolls in the global control group: the contact is in it
    and the journey's mail is marketing mail the group is held out of. Decided at enrollment, like
    the holdout, and carried to every send of the run, so the readout's control group is exactly
    the runs whose sends were skipped as `control_group`."""
    if not in_control_group(contact_id=contact_id):
        return False
    try:
        return category_get(journey.category).user_manageable
    except UnknownCategory:  # the send refuses it anyway; the run is not a control-group run
        return False


# --- goals -------------------------------------------------------------------------------------

# One statement for every (event, journey) pair a batch's events complete: each run of the
# contact in that journey whose trigger occurred at or before the goal event, and less than the
# goal's window before it, converts (once: the first goal event counts).
_CONVERT_SQL = """
INSERT INTO journeys_goalconversion (run_id, journey_id, contact_id, event_id, converted_at)
SELECT DISTINCT ON (r.id) r.id, r.journey_id, r.contact_id, m.event_id, m.occurred_at
FROM unnest(%(events)s::uuid[], %(contacts)s::uuid[], %(journeys)s::text[], %(windows)s::float8[],
            %(occurred)s::timestamptz[]) AS m(event_id, contact_id, journey_id, window_s, occurred_at)
JOIN journeys_journeyrun r ON r.contact_id = m.contact_id AND r.journey_id = m.journey_id
LEFT JOIN contacts_event t ON t.id = r.trigger_event_id
WHERE r.trigger_event_id IS DISTINCT FROM m.event_id
  AND coalesce(t.occurred_at, r.entered_at) <= m.occurred_at
  AND m.occurred_at < coalesce(t.occurred_at, r.entered_at) + make_interval(secs => m.window_s)
ORDER BY r.id, m.occurred_at
ON CONFLICT (run_id) DO NOTHING
"""


# Enrollment locks the contact's row before it inserts the run and looks for goal events already
# stored (journeys.services.journey_enroll); the attribution takes the same lock first, so
# whichever of the two commits second sees the other's row: a goal event racing its run's
# enrollment converts it exactly once, from one side or the other. Ingest's contact upsert holds
# these locks already (ON CONFLICT DO UPDATE locks a row it leaves unchanged); taking them here
# keeps the seam exact whatever its caller did, at the cost of one statement. In ingest's order
# (user id), so two batches never wait on each other in a circle.
_LOCK_SQL = """
SELECT c.id FROM contacts_contact c WHERE c.id = ANY(%(contacts)s::uuid[]) ORDER BY c.user_id
FOR NO KEY UPDATE
"""


def conversions_record(*, pairs: Sequence[tuple[Event, Journey]]) -> int:
    """Attribute goal events to runs: the contacts' row locks, then one statement; returns how
    many runs converted.

    1. Lock the contacts' rows (as enrollment does): a run enrolling concurrently either commits
       first, and the next statement, with a new snapshot, sees it; or waits for this transaction,
       and then its own look for goal events sees ours.
    2. Insert the conversions; a run that already has one keeps it (ON CONFLICT DO NOTHING).
    """
    if not pairs:
        return 0
    params = {
        "events": [e.id for e, _ in pairs],
        "contacts": [e.contact_id for e, _ in pairs],
        "journeys": [j.id for _, j in pairs],
        "windows": [journey_time(j.goal.within).total_seconds() for _, j in pairs],  # type: ignore[union-attr]
        "occurred": [e.occurred_at for e, _ in pairs],
    }
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, {"contacts": sorted({str(c) for c in params["contacts"]})})
        cursor.execute(_CONVERT_SQL, params)
        return cursor.rowcount


def conversion_at_entry(
    *, journey: Journey, run_id: UUID, contact_id: UUID, trigger_event_id: UUID | None, entered_at: datetime
) -> bool:
    """A goal event already stored when the run enrolls (the same batch as its trigger, a slow
    relay) converts the run too: the first matching one in the window after the trigger."""
    from journeys.conditions import all_match
    from journeys.models import GoalConversion

    goal = journey.goal
    if goal is None:
        return False
    since = (
        Event.objects.filter(pk=trigger_event_id).values_list("occurred_at", flat=True).first()
        if trigger_event_id
        else None
    ) or entered_at
    candidates = (
        Event.objects.filter(
            contact_id=contact_id,
            name=goal.event,
            occurred_at__gte=since,
            occurred_at__lt=since + journey_time(goal.within),
        )
        .exclude(pk=trigger_event_id)
        .order_by("occurred_at", "received_at")
        .values_list("pk", "properties", "occurred_at")
    )
    for event_id, properties, occurred_at in candidates[:100]:
        if all_match(goal.where, properties or {}):
            _, created = GoalConversion.objects.get_or_create(
                run_id=run_id,
                defaults={
                    "journey_id": journey.id,
                    "contact_id": contact_id,
                    "event_id": event_id,
                    "converted_at": occurred_at,
                },
            )
            return created
    return False


class JourneyGoalRules:
    """Installed into `contacts.conversions` at start-up: ingest asks it which stored events
    complete a journey's goal, decided from the definitions in memory (no query for the rest)."""

    def event_names(self) -> frozenset[str]:
        from journeys.registry import registry

        return frozenset(j.goal.event for j in registry.all() if j.goal is not None)

    def apply(self, *, events: Sequence[Event]) -> int:
        from journeys.registry import registry

        with_goals = [j for j in registry.all() if j.goal is not None]
        pairs = [
            (event, journey)
            for event in events
            for journey in with_goals
            if journey.goal is not None and journey.goal.matches(event.name, event.properties or {})
        ]
        return conversions_record(pairs=pairs)
