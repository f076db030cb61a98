"""Both ways the relay hands events to the engine start the same journeys and tasks.

`ENGINE_START_MODE=runs`: the relay creates each journey's and custom task's run in bulk and
pushes an event only when a parked wait waits for it; `events`: it pushes every triggering event
and the engine fans it out to the tasks registered on its name. Either way a trigger starts its
journey once, a custom task runs, and a wait resolves on the event it waits for.
"""

from __future__ import annotations

import pytest

from contacts.models import Event
from journeys.models import JourneyRun
from tests.e2e.conftest import CSM_INBOX, DAY, SCALE, WorkerProcess, wait_until

pytestmark = [pytest.mark.engine, pytest.mark.flaky(reruns=1, reruns_delay=2)]


@pytest.fixture(params=["runs", "events"])
def worker_in_mode(request, transactional_db, e2e_env, smtp, settings):
    from journeys.runtime.engine import reset_client

    settings.HOGSEND_TIME_SCALE = SCALE
    settings.CSM_ALERT_EMAIL = CSM_INBOX
    settings.ENGINE_START_MODE = request.param
    reset_client()
    smtp.clear()
    worker = WorkerProcess({**e2e_env, "ENGINE_START_MODE": request.param})
    worker.mark()
    worker.start()
    yield request.param
    worker.kill()


def post(api, name, user_id, **fields):
    body = {"name": name, "userId": user_id, "userEmail": f"{user_id}@example.com", **fields}
    response = api.post("/v1/events", body)
    assert response.status_code in (200, 202), response.content
    return response.json()


def run_of(journey_id, user_id):
    return JourneyRun.objects.filter(journey_id=journey_id, contact__user_id=user_id).first()


def test_a_trigger_starts_its_journey_once_its_task_runs_and_a_wait_resolves(api, worker_in_mode, smtp):
    user = f"mode-{worker_in_mode}"
    post(api, "user.signed_up", user, eventProperties={"plan": "enterprise", "seats": 40})
    wait_until(
        lambda: (r := run_of("concierge-onboarding", user)) and r.current_node == "await-csm",
        timeout=10,
        what="the run parked in its wait",
    )
    post(api, "csm.contacted", user, eventProperties={"csm_name": "Sarah", "channel": "email"})
    wait_until(
        lambda: run_of("concierge-onboarding", user).status == "completed",
        timeout=20 * DAY,
        what="the wait resolved and the journey completed",
    )

    [intro] = smtp.to(f"{user}@example.com")
    assert "Sarah will be your guide" in intro.get_body(("plain",)).get_content()
    assert len(smtp.to(CSM_INBOX)) == 1  # the journey's csm-alert custom task ran, once
    assert JourneyRun.objects.filter(journey_id="concierge-onboarding", contact__user_id=user).count() == 1
    # The trigger reached the engine as a run (runs) or as an event (events); the answer the wait
    # waited for was pushed either way.
    states = dict(Event.objects.filter(contact__user_id=user).values_list("name", "dispatch_state"))
    assert states["csm.contacted"] == "dispatched"
