"""On the real engine: a trigger whose run the engine lost is pushed again, and the journey runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from django.core.cache import cache
from django.utils import timezone

from contacts.models import Event
from journeys.reconcile import MARK_KEY, outbox_reconcile
from tests.e2e.conftest import wait_until
from tests.e2e.test_journeys_on_engine import post, run_of, subjects

pytestmark = [pytest.mark.engine, pytest.mark.flaky(reruns=1, reruns_delay=2)]


def test_a_trigger_whose_engine_run_was_lost_is_pushed_again_and_its_journey_runs(api, live, smtp):
    from hatchet_sdk.features.runs import BulkCancelReplayOpts

    from journeys.runtime.engine import hatchet_client
    from journeys.runtime.relay import OutboxRelay

    # The engine accepts the push, then loses the run: no worker takes it and it is cancelled,
    # as when the engine gives up on a task whose workers were killed.
    live.kill()
    event_id = post(api, "user.created", "lost")["eventId"]
    started = datetime.now(tz=UTC) - timedelta(minutes=1)
    assert OutboxRelay().drain() == 1
    client = hatchet_client()
    runs = wait_until(
        lambda: client.runs.list(since=started, additional_metadata={"hogsend_event_id": event_id}).rows,
        timeout=30,
        what="the engine's runs for the event",
    )
    client.runs.bulk_cancel(BulkCancelReplayOpts(ids=[r.workflow_run_external_id for r in runs]))
    wait_until(
        lambda: all(
            "CANCEL" in str(client.runs.get_status(r.workflow_run_external_id)).upper() for r in runs
        ),
        timeout=30,
        what="the runs to be cancelled",
    )
    live.mark()
    live.start()
    assert run_of("activation-welcome", "lost") is None
    assert Event.objects.get(pk=event_id).dispatch_state == "dispatched"

    # The timeout passes (the push is dated back rather than waited for).
    Event.objects.filter(pk=event_id).update(dispatched_at=timezone.now() - timedelta(minutes=11))
    cache.delete(MARK_KEY)
    result = outbox_reconcile()

    assert result.redispatched == [UUID(event_id)]
    wait_until(
        lambda: subjects(smtp, "lost") == ["Welcome to Hogsend — let's get you set up"],
        timeout=60,
        what="the welcome email",
    )
    assert run_of("activation-welcome", "lost").status in ("waiting", "active", "completed")
    assert Event.objects.get(pk=event_id).redispatches == 1
