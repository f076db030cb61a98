"""The step log's writes: each position read and written with single statements.

A journey start multiplies these into every launch, backfill and broadcast, so each is one round
trip: a sleep's park (status, current node and step together), a resume, a step's record (only
while the run is live; the first record of a position stands). The first record of a position
also moves the run on its journey's map, in the same statement.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from contacts.prepared import prepared_cursor
from journeys.journey_map import MAP_EDGE_SHARD, MAP_EDGE_UPSERT, MAP_KINDS, node_key
from journeys.models import JourneyRun, RunStep
from journeys.services import RunNotLive, run_ended


def _require_live(run_id: UUID, changed: int) -> None:
    if not changed:
        status = JourneyRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        raise RunNotLive(run_id, status or "gone")


# The park also moves the run on its journey's map (journeys/journey_map.py) when the position is
# new: the edge from the node it was at is counted and the sleep or wait becomes its node.
_PARK_SQL = f"""
WITH prev AS (
    SELECT id, journey_id, map_node,
        NOT EXISTS (SELECT 1 FROM journeys_runstep WHERE run_id = %(run)s AND seq = %(seq)s) AS fresh
    FROM journeys_journeyrun WHERE id = %(run)s
), parked AS (
    UPDATE journeys_journeyrun r SET status = 'waiting', current_node = %(label)s,
        waiting_until = %(until)s, updated_at = %(now)s,
        map_node = CASE WHEN prev.fresh THEN %(node)s ELSE r.map_node END
    FROM prev
    WHERE r.id = prev.id AND r.status IN ({JourneyRun.LIVE_STATUSES_SQL})
    RETURNING r.id
), step AS (
    INSERT INTO journeys_runstep (run_id, seq, kind, label, result, recorded_at)
    SELECT id, %(seq)s, %(kind)s, %(label)s, %(result)s::jsonb, %(now)s FROM parked
    ON CONFLICT (run_id, seq) DO UPDATE SET kind = EXCLUDED.kind, label = EXCLUDED.label,
        result = EXCLUDED.result, recorded_at = EXCLUDED.recorded_at
), edge AS (
    INSERT INTO journeys_journeymapedge (journey_id, source, target, shard, runs)
    SELECT prev.journey_id, prev.map_node, %(node)s, {MAP_EDGE_SHARD}, 1
    FROM prev JOIN parked ON parked.id = prev.id
    WHERE prev.fresh
    {MAP_EDGE_UPSERT}
)
SELECT count(*) FROM parked
"""

# The park with the step before it (a send's record, `JourneyContext._pending`) in the same
# statement: that step is recorded as `step_record` would (the first record of a position stands)
# and moves the run on the map when it is new, then the park moves it on to the sleep or wait.
# One update of the run, not two: each is a new version of the row in every one of its indexes.
_PARK_AFTER_SQL = f"""
WITH prev AS (
    SELECT id, journey_id, map_node,
        NOT EXISTS (SELECT 1 FROM journeys_runstep WHERE run_id = %(run)s AND seq = %(seq)s) AS fresh,
        %(p_on_map)s AND NOT EXISTS (
            SELECT 1 FROM journeys_runstep WHERE run_id = %(run)s AND seq = %(p_seq)s) AS p_moves
    FROM journeys_journeyrun WHERE id = %(run)s
), parked AS (
    UPDATE journeys_journeyrun r SET status = 'waiting', current_node = %(label)s,
        waiting_until = %(until)s, updated_at = %(now)s,
        map_node = CASE WHEN prev.fresh THEN %(node)s WHEN prev.p_moves THEN %(p_node)s
            ELSE r.map_node END
    FROM prev
    WHERE r.id = prev.id AND r.status IN ({JourneyRun.LIVE_STATUSES_SQL})
    RETURNING r.id
), before AS (
    INSERT INTO journeys_runstep (run_id, seq, kind, label, result, recorded_at)
    SELECT id, %(p_seq)s, %(p_kind)s, %(p_label)s, %(p_result)s::jsonb, %(now)s FROM parked
    ON CONFLICT (run_id, seq) DO NOTHING
), step AS (
    INSERT INTO journeys_runstep (run_id, seq, kind, label, result, recorded_at)
    SELECT id, %(seq)s, %(kind)s, %(label)s, %(result)s::jsonb, %(now)s FROM parked
    ON CONFLICT (run_id, seq) DO UPDATE SET kind = EXCLUDED.kind, label = EXCLUDED.label,
        result = EXCLUDED.result, recorded_at = EXCLUDED.recorded_at
), edge AS (
    INSERT INTO journeys_journeymapedge (journey_id, source, target, shard, runs)
    SELECT prev.journey_id, e.source, e.target, {MAP_EDGE_SHARD}, 1
    FROM prev JOIN parked ON parked.id = prev.id
    CROSS JOIN LATERAL (VALUES
        (prev.p_moves, prev.map_node, %(p_node)s::varchar),
        (prev.fresh, CASE WHEN prev.p_moves THEN %(p_node)s ELSE prev.map_node END, %(node)s::varchar)
    ) AS e (counted, source, target)
    WHERE e.counted
    {MAP_EDGE_UPSERT}
)
SELECT count(*) FROM parked
"""

_RESUME_SQL = f"""
WITH resumed AS (
    UPDATE journeys_journeyrun SET status = 'active', waiting_until = NULL, updated_at = %(now)s
    WHERE id = %(run)s AND status IN ({JourneyRun.LIVE_STATUSES_SQL})
    RETURNING id
), step AS (
    UPDATE journeys_runstep SET result = %(result)s::jsonb
    WHERE run_id = (SELECT id FROM resumed) AND seq = %(seq)s
)
SELECT count(*) FROM resumed
"""

# A step is recorded only while the run is live; the first record of a position stands (a second
# execution racing the first, after an eviction, gets the first one's result back).
_STEP_RECORD_SQL = f"""
WITH run AS (
    SELECT status, journey_id, map_node FROM journeys_journeyrun WHERE id = %(run)s
), recorded AS (
    INSERT INTO journeys_runstep (run_id, seq, kind, label, result, recorded_at)
    SELECT %(run)s, %(seq)s, %(kind)s, %(label)s, %(result)s::jsonb, %(now)s
    FROM run WHERE status IN ({JourneyRun.LIVE_STATUSES_SQL})
    ON CONFLICT (run_id, seq) DO NOTHING
    RETURNING result
), moved AS (
    UPDATE journeys_journeyrun SET map_node = %(node)s
    WHERE id = %(run)s AND %(on_map)s AND EXISTS (SELECT 1 FROM recorded)
), edge AS (
    INSERT INTO journeys_journeymapedge (journey_id, source, target, shard, runs)
    SELECT run.journey_id, run.map_node, %(node)s, {MAP_EDGE_SHARD}, 1 FROM run
    WHERE %(on_map)s AND EXISTS (SELECT 1 FROM recorded)
    {MAP_EDGE_UPSERT}
)
SELECT (SELECT status FROM run), EXISTS (SELECT 1 FROM recorded),
       (SELECT s.result FROM journeys_runstep s WHERE s.run_id = %(run)s AND s.seq = %(seq)s)
"""


# A run's completion with its last step (a send's record, `JourneyContext._pending`) in the same
# statement: the step is recorded as `step_record` would while the run is live (the first record
# of a position stands), and the run, if active, completes, moved on the map to that step's node
# when its record is new. One update of the run, not two, as in the park.
_COMPLETE_AFTER_SQL = f"""
WITH prev AS (
    SELECT id, journey_id, map_node, status,
        %(p_on_map)s AND NOT EXISTS (
            SELECT 1 FROM journeys_runstep WHERE run_id = %(run)s AND seq = %(p_seq)s) AS p_moves
    FROM journeys_journeyrun WHERE id = %(run)s
), before AS (
    INSERT INTO journeys_runstep (run_id, seq, kind, label, result, recorded_at)
    SELECT id, %(p_seq)s, %(p_kind)s, %(p_label)s, %(p_result)s::jsonb, %(now)s FROM prev
    WHERE prev.status IN ({JourneyRun.LIVE_STATUSES_SQL})
    ON CONFLICT (run_id, seq) DO NOTHING
), completed AS (
    UPDATE journeys_journeyrun r SET status = 'completed', ended_at = %(now)s, waiting_until = NULL,
        updated_at = %(now)s, map_node = CASE WHEN prev.p_moves THEN %(p_node)s ELSE r.map_node END
    FROM prev
    WHERE r.id = prev.id AND r.status = 'active'
    RETURNING r.id
), edge AS (
    INSERT INTO journeys_journeymapedge (journey_id, source, target, shard, runs)
    SELECT prev.journey_id, prev.map_node, %(p_node)s, {MAP_EDGE_SHARD}, 1
    FROM prev JOIN completed ON completed.id = prev.id
    WHERE prev.p_moves
    {MAP_EDGE_UPSERT}
)
SELECT (SELECT status FROM prev), (SELECT count(*) FROM completed)
"""


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


def _one(sql: str, params: dict[str, Any]) -> tuple:
    """One row of a step-log statement, prepared: each runs at every step of every run."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def run_park(
    *,
    run_id: UUID,
    seq: int,
    kind: str,
    label: str,
    until: datetime,
    result: dict[str, Any],
    pending: dict[str, Any] | None = None,
) -> None:
    """Enter a sleep or wait in one statement: status waiting, the label as current node, the
    step recorded; refuses an ended run. `pending`: the step before it, still unrecorded
    (`step_record`'s arguments), recorded in the same statement."""
    params = {"run": run_id, "seq": seq, "kind": kind, "label": label[:200], "until": until}
    params.update(node=node_key(kind, label[:200]), result=_json(result), now=timezone.now())
    if pending is None:
        (changed,) = _one(_PARK_SQL, params)
    else:
        assert pending["run_id"] == run_id and pending["seq"] != seq
        p_label = pending["label"][:200]
        params.update(
            p_seq=pending["seq"],
            p_kind=pending["kind"],
            p_label=p_label,
            p_result=_json(pending["result"]),
            p_node=node_key(pending["kind"], p_label),
            p_on_map=pending["kind"] in MAP_KINDS,
        )
        (changed,) = _one(_PARK_AFTER_SQL, params)
    _require_live(run_id, changed)


def run_complete_after(*, run_id: UUID, pending: dict[str, Any]) -> bool:
    """`services.run_complete` with the run's unrecorded last step (`step_record`'s arguments)
    recorded in the same statement; a run that ended meanwhile refuses both (RunNotLive). Returns
    whether the run completed (an active run does; one parked at a wait does not)."""
    assert pending["run_id"] == run_id
    label = pending["label"][:200]
    params = {
        "run": run_id,
        "p_seq": pending["seq"],
        "p_kind": pending["kind"],
        "p_label": label,
        "p_result": _json(pending["result"]),
        "p_node": node_key(pending["kind"], label),
        "p_on_map": pending["kind"] in MAP_KINDS,
        "now": timezone.now(),
    }
    with transaction.atomic():
        status, completed = _one(_COMPLETE_AFTER_SQL, params)
        if status not in JourneyRun.LIVE_STATUSES:
            raise RunNotLive(run_id, status or "gone")
        if completed:
            run_ended(run_id=run_id, status=JourneyRun.Status.COMPLETED)
    return bool(completed)


def run_resume(*, run_id: UUID, seq: int, result: dict[str, Any]) -> None:
    """Leave a sleep or wait in one statement: back to active, the step's outcome recorded;
    refuses an ended run."""
    (changed,) = _one(
        _RESUME_SQL, {"run": run_id, "seq": seq, "result": _json(result), "now": timezone.now()}
    )
    _require_live(run_id, changed)


def steps_load(*, run_id: UUID) -> tuple[str, dict[int, RunStep]]:
    """The run's status and its whole step log, by position (one statement: a replay reads its
    log once, not once per step)."""
    status = "gone"
    steps: dict[int, RunStep] = {}
    rows = JourneyRun.objects.filter(pk=run_id).values_list(
        "status", "steps__seq", "steps__kind", "steps__label", "steps__result"
    )
    for row_status, seq, kind, label, result in rows:
        status = row_status
        if seq is not None:
            steps[seq] = RunStep(run_id=run_id, seq=seq, kind=kind, label=label, result=result)
    return status, steps


def run_status(*, run_id: UUID) -> str:
    return JourneyRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "gone"


def step_record(*, run_id: UUID, seq: int, kind: str, label: str, result: dict[str, Any]) -> dict[str, Any]:
    """Record what a position returned, in one statement, while the run is live; returns the
    result that stands at that position (an earlier execution's, if it recorded first)."""
    params = {"run": run_id, "seq": seq, "kind": kind, "label": label[:200], "result": _json(result)}
    params.update(node=node_key(kind, label[:200]), on_map=kind in MAP_KINDS)
    status, recorded, standing = _one(_STEP_RECORD_SQL, {**params, "now": timezone.now()})
    if status not in JourneyRun.LIVE_STATUSES:
        raise RunNotLive(run_id, status or "gone")
    if recorded or standing is None:
        return result
    return json.loads(standing) if isinstance(standing, str) else standing


def run_checkpoint(*, run_id: UUID, seq: int, label: str) -> None:
    with transaction.atomic():
        changed = JourneyRun.objects.filter(pk=run_id, status__in=JourneyRun.LIVE_STATUSES).update(
            current_node=label[:200], updated_at=timezone.now()
        )
        _require_live(run_id, changed)
        step_record(run_id=run_id, seq=seq, kind=RunStep.Kind.CHECKPOINT, label=label, result={})


_EXPOSURE_SQL = """
INSERT INTO journeys_variantexposure
    (journey_id, version, key, arm, arm_index, run_id, contact_id, exposed_at)
SELECT r.journey_id, r.version, %(key)s, %(arm)s, %(arm_index)s, r.id, r.contact_id, %(now)s
FROM journeys_journeyrun r WHERE r.id = %(run)s
ON CONFLICT (run_id, key) DO NOTHING
"""


def variant_record(*, run_id: UUID, seq: int, key: str, arm: str, arms: tuple[str, ...]) -> str:
    """Record the arm at its position and the run's exposure (once per run and key), together;
    returns the arm that stands (an earlier execution's, if it recorded first)."""
    with transaction.atomic():
        standing = step_record(
            run_id=run_id, seq=seq, kind=RunStep.Kind.VARIANT, label=key, result={"arm": arm}
        )
        with connection.cursor() as cursor:
            cursor.execute(
                _EXPOSURE_SQL,
                {
                    "key": key,
                    "arm": standing["arm"],
                    "arm_index": arms.index(standing["arm"]) if standing["arm"] in arms else 0,
                    "run": run_id,
                    "now": timezone.now(),
                },
            )
    return standing["arm"]
