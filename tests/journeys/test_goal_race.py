"""A goal event committed while its run enrolls converts the run exactly once (real threads on
PostgreSQL): the goal seam's attribution and enrollment's look for stored goal events take the
contact's row lock, so whichever commits second sees the other's row.

Through ingest the contact upsert holds that lock already; the seam takes it itself, so a goal
event stored any other way (a row handed to `contacts.conversions` as ingest hands its rows)
cannot slip between the two either."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from contacts.conversions import conversions_apply
from contacts.ingest import event_ingest
from contacts.models import Event
from journeys.definition import Goal, define_journey
from journeys.durations import days
from journeys.models import GoalConversion, JourneyRun
from journeys.services import journey_enroll
from tests.support import in_thread, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@define_journey(
    id="race-goal", name="Racing goal", trigger="race.start", goal=Goal("race.bought", within=days(7))
)
async def race_goal(user, ctx):
    pass


def _waits_on_a_lock_or_is_done(thread: threading.Thread):
    def check() -> bool:
        if not thread.is_alive():
            return True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] > 0

    return check


def _trigger():
    started = event_ingest(name="race.start", user_id="ada", email="ada@example.com", dispatch=False)
    return started.event


def _enroll(trigger) -> JourneyRun:
    enrollment = journey_enroll(
        journey=race_goal,
        contact_id=trigger.contact_id,
        trigger_event_id=trigger.id,
        properties={},
        engine_run_id=None,
    )
    assert enrollment.run is not None
    return enrollment.run


def _by_ingest(trigger) -> None:
    event_ingest(name="race.bought", user_id="ada", dispatch=False)


def _by_the_seam(trigger) -> None:
    """The goal event stored as a row and handed to the goal seam (no contact upsert before it)."""
    event = Event.objects.create(
        contact_id=trigger.contact_id, name="race.bought", properties={}, occurred_at=trigger.occurred_at
    )
    conversions_apply(stored=[event])


STORED = pytest.mark.parametrize("store", [_by_ingest, _by_the_seam], ids=["ingest", "seam"])


@STORED
def test_a_goal_event_stored_but_not_yet_committed_when_its_run_enrolls_converts_it(journey_register, store):
    journey_register(race_goal)
    trigger = _trigger()
    stored, release = threading.Event(), threading.Event()
    errors: list = []

    def ingest_the_goal():
        with transaction.atomic():  # attributed before the run exists; committed later
            store(trigger)
            stored.set()
            release.wait(30)

    goal = in_thread(ingest_the_goal, errors)
    assert stored.wait(30)
    runs: list[JourneyRun] = []
    enrolling = in_thread(lambda: runs.append(_enroll(trigger)), errors)
    wait_until(_waits_on_a_lock_or_is_done(enrolling), timeout=30, what="the enrollment to wait or finish")
    release.set()
    goal.join(30)
    enrolling.join(30)

    assert errors == []
    (run,) = runs
    assert list(GoalConversion.objects.values_list("run_id", "event__name")) == [(run.id, "race.bought")]


@STORED
def test_a_goal_event_ingested_while_its_run_enrolls_uncommitted_converts_it(journey_register, store):
    journey_register(race_goal)
    trigger = _trigger()
    enrolled, release = threading.Event(), threading.Event()
    runs: list[JourneyRun] = []
    errors: list = []

    def enroll():
        with transaction.atomic():  # the run and its look for goal events, committed later
            runs.append(_enroll(trigger))
            enrolled.set()
            release.wait(30)

    enrolling = in_thread(enroll, errors)
    assert enrolled.wait(30)
    goal = in_thread(lambda: store(trigger), errors)
    wait_until(_waits_on_a_lock_or_is_done(goal), timeout=30, what="the goal's ingest to wait or finish")
    release.set()
    enrolling.join(30)
    goal.join(30)

    assert errors == []
    (run,) = runs
    assert list(GoalConversion.objects.values_list("run_id", "event__name")) == [(run.id, "race.bought")]
    # Nothing counts twice: a second goal event and a replayed attribution leave one conversion.
    event_ingest(name="race.bought", user_id="ada", dispatch=False)
    assert GoalConversion.objects.filter(run_id=run.id).count() == 1
