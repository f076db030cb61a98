"""Every pushed triggering event ends in a decision, and every custom task's effect happens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from contacts.ingest import event_ingest
from contacts.models import Event
from journeys.definition import durable_task
from journeys.models import JourneyRun
from journeys.reconcile import MARK_KEY, outbox_reconcile

LATE = timedelta(minutes=11)  # past the default 10-minute timeout
CALLS: list[str] = []


@durable_task(name="reconcile-probe", on_events=["probe.happened"], retries=0)
async def reconcile_probe(payload):
    CALLS.append(payload["event_id"])
    if len(CALLS) == 1:
        raise RuntimeError("the worker running it was killed")


@pytest.fixture(autouse=True)
def fresh_mark():
    CALLS.clear()
    cache.delete(MARK_KEY)
    yield
    cache.delete(MARK_KEY)


def _pushed_long_ago(event_id) -> None:
    """As the relay leaves an event the engine accepted, then lost."""
    Event.objects.filter(pk=event_id).update(
        dispatch_state=Event.DispatchState.DISPATCHED, dispatched_at=timezone.now() - LATE
    )


def test_a_pushed_trigger_no_journey_decided_is_pushed_again_and_enrolls(journey_harness):
    lost = event_ingest(name="user.created", user_id="ada", email="ada@example.com", dispatch=False)
    _pushed_long_ago(lost.event.id)

    result = outbox_reconcile()

    assert result.redispatched == [lost.event.id]
    assert journey_harness.templates_sent_to("ada@example.com") == ["activation/welcome"]
    event = Event.objects.get(pk=lost.event.id)
    assert (event.redispatches, event.dispatch_state) == (1, "pending")


def test_a_trigger_that_made_a_run_or_a_skip_is_left_alone(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada")
    skipped = journey_harness.emit("user.created", user_id="ada")  # entry limit "once": a skip
    assert journey_harness.skip_reasons("activation-welcome", "ada") == ["already_entered_once"]
    for event in Event.objects.all():
        _pushed_long_ago(event.id)

    assert outbox_reconcile().redispatched == []
    assert Event.objects.get(pk=skipped.event.id).redispatches == 0


def test_a_push_younger_than_the_timeout_is_not_reconciled_yet(journey_harness):
    lost = event_ingest(name="user.created", user_id="ada", dispatch=False)
    Event.objects.filter(pk=lost.event.id).update(
        dispatch_state=Event.DispatchState.DISPATCHED, dispatched_at=timezone.now() - timedelta(minutes=9)
    )

    assert outbox_reconcile().redispatched == []
    assert JourneyRun.objects.count() == 0


def test_a_custom_task_that_failed_runs_again_and_one_that_ran_is_never_repeated(journey_harness, register):
    register(reconcile_probe)
    happened = journey_harness.emit("probe.happened", user_id="ada")
    assert [f.task for f in journey_harness.task_failures] == ["reconcile-probe"]
    _pushed_long_ago(happened.event.id)

    assert outbox_reconcile().redispatched == [happened.event.id]
    assert CALLS == [str(happened.event.id)] * 2
    assert Event.objects.get(pk=happened.event.id).tasks_done == ["reconcile-probe"]

    # Pushed once more (a relay retry): the task's effect already happened, so it does not run.
    journey_harness.after_ingest(event_ids=[happened.event.id], exited_run_ids=[])
    _pushed_long_ago(happened.event.id)
    cache.delete(MARK_KEY)
    assert outbox_reconcile().redispatched == []
    assert len(CALLS) == 2


def test_an_event_still_undecided_after_every_re_push_is_set_aside_as_unsettled(journey_harness):
    lost = event_ingest(name="user.created", user_id="ada", dispatch=False)
    _pushed_long_ago(lost.event.id)
    Event.objects.filter(pk=lost.event.id).update(redispatches=3)

    result = outbox_reconcile()

    assert (result.redispatched, result.unsettled) == ([], [lost.event.id])
    assert Event.objects.get(pk=lost.event.id).dispatch_state == "unsettled"
    assert JourneyRun.objects.count() == 0


def test_each_pushed_event_is_read_about_once_the_mark_moves_past_what_was_checked(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada")
    _pushed_long_ago(Event.objects.get().id)
    first = outbox_reconcile()
    lost = event_ingest(name="user.created", user_id="bob", dispatch=False)
    Event.objects.filter(pk=lost.event.id).update(
        dispatch_state=Event.DispatchState.DISPATCHED,
        dispatched_at=first.checked_until - timedelta(seconds=1),
    )

    # Pushed before the mark: a later pass no longer reads it (the pass before saw it decided or
    # not there at all); a fresh deployment without a mark looks back a day.
    assert outbox_reconcile().redispatched == []
    cache.delete(MARK_KEY)
    assert outbox_reconcile().redispatched == [lost.event.id]


def test_the_studio_lists_the_events_the_reconciler_pushed_again(journey_harness, admin_client):
    lost = event_ingest(name="user.created", user_id="ada", dispatch=False)
    event_ingest(name="user.created", user_id="bob", dispatch=False)
    _pushed_long_ago(lost.event.id)
    outbox_reconcile()

    page = admin_client.get("/admin/contacts/event/?reconciled=yes")

    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert "Pushed again by the reconciler" in page.content.decode()


def _reconciled_metric(text: str, outcome: str) -> float:
    prefix = f'hogsend_outbox_reconciled_total{{outcome="{outcome}"}} '
    return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def test_the_periodic_task_counts_what_it_pushed_again_in_the_metrics(journey_harness):
    from operations.metrics import metrics_render
    from operations.tasks import outbox_reconcile as reconcile_task

    before = _reconciled_metric(metrics_render().decode(), "redispatched")
    lost = event_ingest(name="user.created", user_id="ada", dispatch=False)
    _pushed_long_ago(lost.event.id)

    assert reconcile_task() == {"redispatched": 1, "unsettled": 0}
    assert _reconciled_metric(metrics_render().decode(), "redispatched") == before + 1
