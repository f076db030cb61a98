"""The event path on a real engine: the relay pushes each event once, a wait never misses an event
that arrives while it registers, and a worker stopped with parked runs leaves promptly and loses
nothing."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from contacts.models import Event
from journeys.models import JourneyRun
from tests.e2e.conftest import DAY, WorkerProcess, wait_until

pytestmark = pytest.mark.engine


def batch(api, events):
    response = api.post("/v1/events/batch", {"events": events})
    assert response.status_code == 202, response.content
    return response.json()["results"]


def emails_to(smtp, user_id):
    return [" ".join(str(m["Subject"]).split()) for m in smtp.to(f"{user_id}@example.com")]


def test_an_answer_that_arrives_while_the_wait_registers_still_resolves_it(api, live, smtp):
    """The relay first passes over the answer (no wait is known yet) and the registration re-arms it."""
    user = "slowreg-ada"
    batch(api, [{"name": "e2e.ask", "userId": user, "userEmail": f"{user}@example.com"}])
    wait_until(
        lambda: JourneyRun.objects.filter(journey_id="e2e-await", contact__user_id=user).exists(),
        timeout=30,
        what="the run to start",
    )
    time.sleep(0.5)  # inside the two-second window between the wait's start and its registration
    answer = batch(api, [{"name": "e2e.answer", "userId": user, "eventProperties": {"n": 42}}])[0]
    wait_until(
        lambda: Event.objects.get(pk=answer["eventId"]).dispatch_state == "skipped",
        timeout=5,
        what="the relay to pass over the answer before the wait registered",
    )

    wait_until(lambda: emails_to(smtp, user), timeout=4 * DAY, what="the journey's email")
    assert emails_to(smtp, user) == ["answered 42"]
    assert Event.objects.get(pk=answer["eventId"]).dispatch_state == "dispatched"


def test_several_relays_at_once_push_each_event_exactly_once(api, e2e_env, transactional_db, smtp, settings):
    """Three relays race over the same outbox (the worker's own is off); every fan-out journey
    runs once per contact."""
    from journeys.registry import load_journey_modules
    from journeys.runtime.engine import reset_client
    from journeys.runtime.relay import OutboxRelay

    load_journey_modules(["tests.e2e.journeys"])
    reset_client()
    worker = WorkerProcess({**e2e_env, "WORKER_RELAY": "false"})
    worker.mark()
    worker.start()
    try:
        pushed: list = []
        lock = threading.Lock()

        class Recording(OutboxRelay):
            def deliver(self, items):
                super().deliver(items)
                with lock:
                    pushed.extend(i.id for i in items)

        users = [f"relay-{i}" for i in range(60)]
        accepted = batch(
            api, [{"name": "e2e.fanout", "userId": u, "userEmail": f"{u}@example.com"} for u in users]
        )

        def relay() -> None:
            from django.db import connection

            try:
                Recording(batch_size=7).drain()
            finally:
                connection.close()

        threads = [threading.Thread(target=relay) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)

        assert sorted(pushed) == sorted(Event.objects.get(pk=a["eventId"]).pk for a in accepted)
        wait_until(
            lambda: JourneyRun.objects.filter(
                journey_id__startswith="e2e-fanout-", status="completed"
            ).count()
            == 3 * len(users),
            timeout=30 * DAY,
            what="every fan-out journey to complete",
        )
        assert JourneyRun.objects.filter(journey_id__startswith="e2e-fanout-").count() == 3 * len(users)
    finally:
        worker.kill()


def test_sigterm_with_parked_runs_leaves_promptly_and_the_next_worker_finishes_them(api, live, smtp):
    users = [f"parked-{i}" for i in range(40)]
    batch(api, [{"name": "e2e.park", "userId": u, "userEmail": f"{u}@example.com"} for u in users])
    wait_until(
        lambda: JourneyRun.objects.filter(journey_id="e2e-park", status="waiting").count() == len(users),
        timeout=60,
        what="every run to park",
    )

    started = time.monotonic()
    live.kill(signal.SIGTERM)
    stopped_in = time.monotonic() - started
    assert stopped_in < 30, f"runworker took {stopped_in:.0f}s to stop"

    live.mark()
    live.start()
    wait_until(
        lambda: JourneyRun.objects.filter(journey_id="e2e-park", status="completed").count() == len(users),
        timeout=40 * DAY,
        what="the next worker to finish every parked run",
    )
    for user in users:
        assert emails_to(smtp, user) == ["after the park"], user
