"""A journey's map is counted as runs move, from run state: sends, sleeps, branches and checkpoints
in the order runs took them, who is where now, and where runs ended."""

from __future__ import annotations

from datetime import timedelta

import pytest

from journeys.durations import days
from journeys.journey_map import journey_map_read, journey_map_rebuild
from journeys.models import JourneyMapEdge, JourneyRun
from journeys.shipped.constants import Events

pytestmark = pytest.mark.django_db

WELCOME = "send:activation/welcome"
SLEEP = "sleep:post-welcome"
BRANCH = "history:has_event:feature.used"
ADVANCED, NUDGE = "checkpoint:branch:advanced", "checkpoint:branch:nudge"


def edges(journey_id: str = "activation-welcome") -> dict[tuple[str, str], int]:
    """Each edge's count, summed over the rows it is counted on (one per writing connection's shard)."""
    counted: dict[tuple[str, str], int] = {}
    for e in JourneyMapEdge.objects.filter(journey_id=journey_id):
        counted[(e.source, e.target)] = counted.get((e.source, e.target), 0) + e.runs
    return counted


def four_users(harness) -> None:
    """ada uses the feature (advanced branch), bob does not (nudge), cy is deleted mid-sleep, and dan
    starts a day later, so he still sleeps when the others are through."""
    for user in ("ada", "bob", "cy"):
        harness.start("activation-welcome", user_id=user)
    harness.advance(days(1))
    harness.start("activation-welcome", user_id="dan")
    harness.emit(Events.USER_DELETED, user_id="cy")
    harness.emit(Events.FEATURE_USED, user_id="ada")
    harness.advance(days(1.5))


def test_the_map_shows_the_path_runs_took_who_is_where_and_where_they_ended(journey_harness):
    four_users(journey_harness)
    journey_map = journey_map_read(journey_id="activation-welcome")
    nodes = {n.key: n for n in journey_map.nodes}

    assert nodes[""].passed == 4 and nodes[WELCOME].passed == 4 and nodes[SLEEP].passed == 4
    assert nodes[SLEEP].parked == 1  # dan sleeps there now
    assert nodes[SLEEP].exits == {"exit_on:user.deleted": 1}  # cy left mid-sleep
    assert nodes[BRANCH].passed == 2 and nodes[BRANCH].is_branch
    assert (nodes[ADVANCED].passed, nodes[NUDGE].passed) == (1, 1)  # the branch, both ways
    assert nodes["send:activation/advanced"].completed == 1
    assert nodes["send:activation/nudge"].completed == 1
    assert journey_map.exits == {"exit_on:user.deleted": 1} and journey_map.completed == 2
    # In the order the runs took them: each node a row below the one before.
    ranks = [nodes[k].rank for k in ("", WELCOME, SLEEP, BRANCH, NUDGE, "send:activation/nudge")]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert nodes[ADVANCED].rank == nodes[NUDGE].rank


def test_a_replayed_run_moves_nobody_on_the_map(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada")
    before = edges()
    run = journey_harness.run("activation-welcome", "ada")
    journey_harness.replay(run)
    journey_harness.replay(run)
    assert edges() == before == {("", WELCOME): 1, (WELCOME, SLEEP): 1}
    journey_harness.advance(days(2))
    assert edges()[(SLEEP, BRANCH)] == 1


def test_recounting_from_the_step_logs_gives_the_map_counted_live(journey_harness):
    four_users(journey_harness)
    live = edges()
    parked = dict(JourneyRun.objects.values_list("pk", "map_node"))
    JourneyMapEdge.objects.all().delete()
    JourneyRun.objects.update(map_node="")
    journey_map_rebuild(journey_id="activation-welcome")
    assert edges() == live
    assert dict(JourneyRun.objects.values_list("pk", "map_node")) == parked


def test_a_run_that_exits_at_enrollment_ends_at_the_entry(journey_harness):
    # The exit event occurred after the trigger and is stored before the run enrolls: it never starts.
    journey_harness.emit(Events.USER_DELETED, user_id="fay", email="fay@example.com")
    journey_harness.emit(
        Events.USER_CREATED, user_id="fay", email="fay@example.com", at=timedelta(minutes=-5)
    )
    assert journey_harness.run("activation-welcome", "fay").status == "exited"
    assert edges() == {("", "exit:exit_on:user.deleted"): 1}


def test_each_connection_counts_an_edge_on_its_own_row_and_the_map_reads_their_sum(journey_harness):
    """Every start of a journey passes the same first edges: counted on one row per edge, each
    concurrent start would queue on that row's lock. A connection counts on its shard's row."""
    from django.db import connection

    from journeys.journey_map import MAP_EDGE_SHARDS

    journey_harness.start("activation-welcome", user_id="ada")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    counted = JourneyMapEdge.objects.get(journey_id="activation-welcome", source="", target=WELCOME)
    assert (counted.shard, counted.runs) == (pid % MAP_EDGE_SHARDS, 1)
    # Another connection's count of the same edge, on its own row.
    JourneyMapEdge.objects.create(
        journey_id="activation-welcome",
        source="",
        target=WELCOME,
        shard=(counted.shard + 1) % MAP_EDGE_SHARDS,
        runs=2,
    )
    nodes = {n.key: n for n in journey_map_read(journey_id="activation-welcome").nodes}
    assert nodes[WELCOME].passed == 3 and nodes[""].passed == 3
    assert edges() == {("", WELCOME): 3, (WELCOME, SLEEP): 1}
