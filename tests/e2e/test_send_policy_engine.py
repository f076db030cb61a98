"""On the real engine: a journey whose send falls in the recipient's quiet hours waits durably
until the window ends, and resumes after the email went."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from emails.models import EmailLog
from journeys.models import JourneyRun
from tests.e2e.conftest import SCALE, WorkerProcess
from tests.support import wait_until

pytestmark = [pytest.mark.engine, pytest.mark.flaky(reruns=1, reruns_delay=2)]


@pytest.fixture
def quiet_now(transactional_db, e2e_env, smtp, settings):
    """A worker whose quiet hours for product updates began an hour ago and end shortly (UTC,
    the contacts' default zone): long enough for the worker to start and the send to fall inside."""
    from journeys.registry import load_journey_modules, registry
    from journeys.runtime.engine import reset_client
    from tests.e2e import journeys as e2e_journeys

    now = timezone.now()
    ends = (now + timedelta(seconds=75)).replace(microsecond=0)
    window = [(now - timedelta(hours=1)).strftime("%H:%M:%S"), ends.strftime("%H:%M:%S")]
    settings.HOGSEND_TIME_SCALE = SCALE
    load_journey_modules(["tests.e2e.journeys"])
    reset_client()
    smtp.clear()
    worker = WorkerProcess({**e2e_env, "HOGSEND_QUIET_HOURS": json.dumps({"product-updates": window})})
    worker.mark()
    worker.start()
    yield ends
    worker.kill()
    for journey in e2e_journeys.JOURNEYS:
        registry.unregister(journey.id)


def test_a_journey_whose_send_is_held_for_quiet_hours_resumes_after_it_goes(api, quiet_now, smtp):
    ends = quiet_now
    response = api.post(
        "/v1/events", {"name": "e2e.quiet", "userId": "night-owl", "userEmail": "owl@example.com"}
    )
    assert response.status_code == 202

    held = wait_until(
        lambda: EmailLog.objects.filter(to_email="owl@example.com", status="held").first(),
        timeout=60,
        what="the send to be held",
    )
    assert (held.status_reason, held.held_until) == ("quiet_hours", ends)
    run = wait_until(  # the run parks on the held send right after writing it
        lambda: JourneyRun.objects.filter(
            journey_id="e2e-quiet", contact__user_id="night-owl", status="waiting"
        ).first(),
        timeout=30,
        what="the run to wait on the held send",
    )
    assert run.current_node == "held:activation/nudge"
    assert smtp.to("owl@example.com") == []

    run = wait_until(
        lambda: JourneyRun.objects.filter(pk=run.pk, status="completed").first(),
        timeout=(ends - timezone.now()).total_seconds() + 90,
        what="the run to resume after the held send",
    )
    sent = EmailLog.objects.get(pk=held.pk)
    assert sent.status == "sent" and sent.sent_at >= ends
    assert run.current_node == "send-sent"
    assert run.ended_at >= sent.sent_at
    assert [str(m["Subject"]) for m in smtp.to("owl@example.com")] == ["after the quiet"]
