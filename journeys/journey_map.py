"""A journey's map: the nodes its runs passed, in order, with who is where now.

The map is kept as run state, not read from step logs: each run remembers the last node it passed
(`JourneyRun.map_node`) and `JourneyMapEdge` counts the runs that went from one node to the next.
Both are written by the statement that first records a step (journeys/steps.py; a replay records
nothing, so it counts nothing) and when a run ends. The Studio then draws the map from one small table and one
grouped read of live runs, whatever the number of runs.

Nodes are `kind:label`: sends (by template), sleeps and waits (by label), checkpoints, and the
branch points a journey decides at (history reads and guards). "" is the entry; runs end at
`end:completed`, `end:failed` or `exit:<reason>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Count, Sum

from journeys.models import JourneyMapEdge, JourneyRun

MAP_KINDS = frozenset({"send", "sleep", "wait", "checkpoint", "history", "guard"})
ENTRY = ""
COMPLETED = "end:completed"
FAILED = "end:failed"
EXIT_PREFIX = "exit:"
NODE_MAX = 220

_EDGE = JourneyMapEdge._meta.db_table
_RUN = JourneyRun._meta.db_table
# Each connection counts on its own rows of an edge (JourneyMapEdge.shard): the database threads
# of the workers start runs of the same journey at once, and on one row per edge each start
# waited for the one before it to commit. Enough shards that a few dozen connections rarely share.
MAP_EDGE_SHARDS = 32
# (A statement with parameters: its % doubled.)
MAP_EDGE_SHARD = f"pg_backend_pid() %% {MAP_EDGE_SHARDS}"
_UPSERT = MAP_EDGE_UPSERT = (
    f"ON CONFLICT (journey_id, source, target, shard) DO UPDATE SET runs = {_EDGE}.runs + EXCLUDED.runs"
)


def node_key(kind: str, label: str) -> str:
    return f"{kind}:{label}"[:NODE_MAX]


def end_key(status: str, reason: str = "") -> str:
    if status == JourneyRun.Status.COMPLETED:
        return COMPLETED
    if status == JourneyRun.Status.FAILED:
        return FAILED
    return f"{EXIT_PREFIX}{reason}"[:NODE_MAX]


# --- writes (inside the caller's transaction) ---------------------------------------------------


def map_end(*, run_id: UUID, status: str, reason: str = "") -> None:
    """The run ended where it was: count the edge to its end (completed, failed, or the exit)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_EDGE} (journey_id, source, target, shard, runs)
            SELECT journey_id, map_node, %s, {MAP_EDGE_SHARD}, 1 FROM {_RUN} WHERE id = %s {_UPSERT}
            """,
            [end_key(status, reason), run_id],
        )


REBUILD_SQL = f"""
DELETE FROM {_EDGE} WHERE %(journey)s::text IS NULL OR journey_id = %(journey)s;
WITH steps AS (
    SELECT s.run_id, r.journey_id, s.seq, left(s.kind || ':' || s.label, {NODE_MAX}) AS node
    FROM journeys_runstep s JOIN {_RUN} r ON r.id = s.run_id
    WHERE s.kind IN ('send', 'sleep', 'wait', 'checkpoint', 'history', 'guard')
      AND (%(journey)s::text IS NULL OR r.journey_id = %(journey)s)
), paths AS (
    SELECT journey_id, node,
           coalesce(lag(node) OVER (PARTITION BY run_id ORDER BY seq), '') AS source
    FROM steps
)
INSERT INTO {_EDGE} (journey_id, source, target, runs)
SELECT journey_id, source, node, count(*) FROM paths GROUP BY 1, 2, 3;
UPDATE {_RUN} r SET map_node = last.node
FROM (
    SELECT DISTINCT ON (s.run_id) s.run_id, left(s.kind || ':' || s.label, {NODE_MAX}) AS node
    FROM journeys_runstep s JOIN {_RUN} r2 ON r2.id = s.run_id
    WHERE s.kind IN ('send', 'sleep', 'wait', 'checkpoint', 'history', 'guard')
      AND (%(journey)s::text IS NULL OR r2.journey_id = %(journey)s)
    ORDER BY s.run_id, s.seq DESC
) last
WHERE r.id = last.run_id;
INSERT INTO {_EDGE} (journey_id, source, target, runs)
SELECT journey_id, map_node,
       CASE status WHEN 'completed' THEN '{COMPLETED}' WHEN 'failed' THEN '{FAILED}'
            ELSE left('{EXIT_PREFIX}' || exit_reason, {NODE_MAX}) END,
       count(*)
FROM {_RUN}
WHERE status IN ('completed', 'failed', 'exited')
  AND (%(journey)s::text IS NULL OR journey_id = %(journey)s)
GROUP BY 1, 2, 3
{_UPSERT};
"""


def journey_map_rebuild(*, journey_id: str | None = None) -> None:
    """Recount a journey's map (every journey's with None) from the step logs of its runs: for data
    written without the step services (a seed, an import). Runs whose logs retention deleted drop out."""
    with connection.cursor() as cursor:
        for statement in REBUILD_SQL.split(";\n"):
            if statement.strip():
                cursor.execute(statement, {"journey": journey_id})


# --- reads ----------------------------------------------------------------------------------------


@dataclass
class MapNode:
    key: str
    passed: int = 0
    parked: int = 0
    completed: int = 0
    failed: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    rank: int = 0
    column: int = 0

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0] if self.key else "entry"

    @property
    def label(self) -> str:
        return self.key.split(":", 1)[1] if self.key else "entered"

    @property
    def is_branch(self) -> bool:
        return self.kind in ("history", "guard")


@dataclass
class JourneyMap:
    nodes: list[MapNode]
    edges: list[tuple[str, str, int]]  # between nodes on the map (ends are on the nodes)
    back_edges: set[tuple[str, str]]
    exits: dict[str, int]
    completed: int
    failed: int

    def node(self, key: str) -> MapNode | None:
        return next((n for n in self.nodes if n.key == key), None)


def journey_map_read(*, journey_id: str) -> JourneyMap:
    """The map of one journey: two queries (the edges; live runs grouped by node)."""
    nodes: dict[str, MapNode] = {ENTRY: MapNode(key=ENTRY)}
    edges: list[tuple[str, str, int]] = []
    exits: dict[str, int] = {}
    completed = failed = 0
    rows = (
        JourneyMapEdge.objects.filter(journey_id=journey_id)
        .values("source", "target")
        .annotate(total=Sum("runs"))
        .values_list("source", "target", "total")
    )
    for source, target, runs in sorted(rows, key=lambda r: -r[2]):
        node = nodes.setdefault(source, MapNode(key=source))
        if target == COMPLETED:
            node.completed += runs
            completed += runs
        elif target == FAILED:
            node.failed += runs
            failed += runs
        elif target.startswith(EXIT_PREFIX):
            reason = target[len(EXIT_PREFIX) :]
            node.exits[reason] = node.exits.get(reason, 0) + runs
            exits[reason] = exits.get(reason, 0) + runs
        else:
            nodes.setdefault(target, MapNode(key=target)).passed += runs
            edges.append((source, target, runs))
    parked = (
        JourneyRun.objects.filter(journey_id=journey_id, status__in=JourneyRun.LIVE_STATUSES)
        .order_by()
        .values("map_node")
        .annotate(n=Count("pk"))
    )
    for row in parked:
        nodes.setdefault(row["map_node"], MapNode(key=row["map_node"])).parked = row["n"]
    entry = nodes[ENTRY]
    entry.passed = sum(r for s, _, r in edges if s == ENTRY) + entry.parked + entry.completed
    entry.passed += entry.failed + sum(entry.exits.values())
    back = _rank(nodes, edges)
    ordered = sorted(nodes.values(), key=lambda n: (n.rank, n.column))
    return JourneyMap(
        ordered, edges, back, dict(sorted(exits.items(), key=lambda i: -i[1])), completed, failed
    )


def _rank(nodes: dict[str, MapNode], edges: list[tuple[str, str, int]]) -> set[tuple[str, str]]:
    """Lay nodes out in rows: a node's row is the longest path to it from the entry, ignoring the
    edges that loop back (a journey that repeats a step); within a row, busiest path first."""
    children: dict[str, list[str]] = {}
    for source, target, _ in edges:  # edges come busiest first
        children.setdefault(source, []).append(target)
    back: set[tuple[str, str]] = set()
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str) -> None:  # iterative DFS: 1 on the stack, 2 done
        stack: list[tuple[str, int]] = [(key, 0)]
        state[key] = 1
        while stack:
            current, i = stack.pop()
            kids = children.get(current, [])
            if i < len(kids):
                stack.append((current, i + 1))
                child = kids[i]
                if state.get(child) == 1:
                    back.add((current, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[current] = 2
                order.append(current)

    for key in [ENTRY, *nodes]:
        if key not in state:
            visit(key)
    for key in reversed(order):  # a topological order of the forward edges
        for child in children.get(key, []):
            if (key, child) not in back:
                nodes[child].rank = max(nodes[child].rank, nodes[key].rank + 1)
    columns: dict[int, int] = {}
    for key in reversed(order):
        node = nodes[key]
        node.column = columns.get(node.rank, 0)
        columns[node.rank] = node.column + 1
    return back


def journey_map_parked_runs(*, journey_id: str, node: str, limit: int = 50) -> list[dict[str, Any]]:
    """The live runs at one node, newest first (one query on the live-runs index)."""
    return list(
        JourneyRun.objects.filter(journey_id=journey_id, status__in=JourneyRun.LIVE_STATUSES, map_node=node)
        .order_by("-entered_at")
        .values("pk", "status", "entered_at", "waiting_until", "contact__user_id", "contact__email")[:limit]
    )
