"""The reconciler: every pushed triggering event ends in a decision, every custom task's effect happens.

The relay marks an event `dispatched` once the engine accepted it; what the engine does next can
still go wrong where the product cannot see it (workers killed while a task was assigned to them,
until the engine gives up and marks the task failed). So, after a timeout, a pushed event that a
journey triggered by it has not decided (no run and no recorded skip for that event) or whose
custom task has not recorded its effect goes back to the outbox and is pushed again. A re-push is
harmless to what already happened: enrollment ignores a trigger event it already decided, and a
custom task skips an event it already handled. After `max_redispatches` the event is set aside
as `unsettled` for an operator, in the Studio and the metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from contacts.outbox import events_redispatch, events_unsettled
from journeys.registry import registry

logger = logging.getLogger(__name__)
# How far the last pass got: events pushed before it were all decided, re-pushed or set aside.
MARK_KEY = "hogsend:reconcile:mark"

_UNDECIDED_SQL = """
WITH listeners(name, kind, target) AS (
    SELECT * FROM unnest(%(names)s::text[], %(kinds)s::text[], %(targets)s::text[])
)
SELECT DISTINCT e.id, e.redispatches, e.dispatched_at
FROM contacts_event e
JOIN listeners l ON l.name = e.name
WHERE e.dispatch_state = 'dispatched' AND e.dispatched_at > %(since)s AND e.dispatched_at <= %(until)s
  AND CASE l.kind
    WHEN 'journey' THEN NOT EXISTS (
            SELECT 1 FROM journeys_journeyrun r WHERE r.journey_id = l.target AND r.trigger_event_id = e.id)
        AND NOT EXISTS (
            SELECT 1 FROM journeys_enrollmentskip s WHERE s.trigger_event_id = e.id AND s.journey_id = l.target)
    ELSE NOT (l.target = ANY(e.tasks_done))
  END
ORDER BY e.dispatched_at
LIMIT %(limit)s
"""


@dataclass
class Reconciled:
    checked_until: datetime
    redispatched: list[UUID] = field(default_factory=list)
    unsettled: list[UUID] = field(default_factory=list)


def _listeners() -> tuple[list[str], list[str], list[str]]:
    names, kinds, targets = [], [], []
    for journey in registry.loaded():
        names.append(journey.trigger.event)
        kinds.append("journey")
        targets.append(journey.id)
    for task in registry.tasks():
        for name in task.on_events:
            names.append(name)
            kinds.append("task")
            targets.append(task.name)
    return names, kinds, targets


def outbox_reconcile(
    *,
    after: timedelta | None = None,
    max_redispatches: int | None = None,
    now: datetime | None = None,
    limit: int = 5000,
) -> Reconciled:
    """Re-push the events pushed more than `after` ago that something listening never settled.

    1. Read, set-based, the pushed events since the last pass's mark whose journey has neither a
       run nor a skip for them, or whose custom task has not recorded its effect.
    2. Those pushed fewer than `max_redispatches` times go back to pending (the relays push them
       again at once); the others are set aside as `unsettled` and logged.
    3. The mark moves to the newest event read (or to `now - after` when the pass saw them all),
       so each pushed event is checked about once, however large the table grows.
    """
    now = now or timezone.now()
    after = after if after is not None else timedelta(seconds=settings.OUTBOX_RECONCILE_AFTER_SECONDS)
    most = max_redispatches if max_redispatches is not None else settings.OUTBOX_RECONCILE_MAX_REDISPATCHES
    until = now - after
    since = cache.get(MARK_KEY) or until - timedelta(seconds=settings.OUTBOX_RECONCILE_LOOKBACK_SECONDS)
    names, kinds, targets = _listeners()
    result = Reconciled(checked_until=until)
    if not names:
        return result
    with connection.cursor() as cursor:
        cursor.execute(
            _UNDECIDED_SQL,
            {
                "names": names,
                "kinds": kinds,
                "targets": targets,
                "since": since,
                "until": until,
                "limit": limit,
            },
        )
        rows = cursor.fetchall()
    again = [event_id for event_id, times, _ in rows if times < most]
    give_up = [event_id for event_id, times, _ in rows if times >= most]
    events_redispatch(event_ids=again, now=now)
    events_unsettled(event_ids=give_up)
    result.redispatched, result.unsettled = again, give_up
    if give_up:
        logger.error(
            "reconciler: %d pushed events were never decided after %d re-pushes; set aside as unsettled: %s",
            len(give_up),
            most,
            give_up[:20],
        )
    if len(rows) >= limit:
        # More to read: the next pass starts at the last one read (a batch of pushes shares one
        # timestamp; those already handled here are no longer `dispatched`).
        result.checked_until = rows[-1][2] - timedelta(microseconds=1)
    cache.set(MARK_KEY, result.checked_until, timeout=None)
    return result
