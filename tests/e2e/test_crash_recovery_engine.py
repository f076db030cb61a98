"""kill -9 between the provider call and its record, on the real engine: the SMTP server on
loopback counts what went out, the email log says what is known, and the sweep settles the rest —
an operator page is sent again (at least once), a journey email is never sent twice."""

from __future__ import annotations

import pytest

from emails.models import EmailLog
from emails.tasks import email_sweep_task
from journeys.models import JourneyRun
from tests.e2e.conftest import CSM_INBOX, DAY, wait_until

pytestmark = pytest.mark.engine
Status = EmailLog.Status
ENGINE_REASSIGNS = 240  # the engine notices the dead worker by its missing heartbeats


def post(api, name: str, user_id: str, **fields) -> None:
    body = {"name": name, "userId": user_id, "userEmail": f"{user_id}@example.com", **fields}
    response = api.post("/v1/events", body)
    assert response.status_code == 202, response.content


def subjects(smtp, user_id: str) -> list[str]:
    return [" ".join(str(m["Subject"]).split()) for m in smtp.to(f"{user_id}@example.com")]


@pytest.fixture
def sweep_now(settings, monkeypatch, smtp):
    """Run the email sweep here, as beat would, treating every claim as outlived; its
    deliveries run in this process (eager Celery) against the same SMTP server."""
    from hogsend.celery import app

    monkeypatch.setitem(app.conf, "CELERY_TASK_ALWAYS_EAGER", True)
    settings.EMAIL_SENDING_TIMEOUT_SECONDS = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    return lambda: email_sweep_task.apply().get()


def killed_mid_send(live, kill_after_send) -> None:
    wait_until(lambda: not live.alive(), timeout=60, what="the worker to die after the provider call")
    assert not kill_after_send.exists()  # it fired once, and only once


def test_an_operator_page_the_worker_died_sending_is_sent_again(api, live, smtp, kill_after_send, sweep_now):
    kill_after_send.write_text(CSM_INBOX)
    post(
        api,
        "csm.assignment_requested",
        "bigco",
        eventProperties={"plan": "enterprise", "seats": 40, "requested_at": "2026-11-30T09:00:00+00:00"},
    )
    killed_mid_send(live, kill_after_send)

    (page,) = EmailLog.objects.filter(to_email=CSM_INBOX)
    assert page.status == Status.SENDING  # the server has it; the process died before the record
    assert len(smtp.to(CSM_INBOX)) == 1

    live.restart()
    swept = sweep_now()

    page.refresh_from_db()
    assert swept == {"delivered": 1, "resent": 1, "unknown": 0, "released": 0}
    assert (page.status, page.attempts) == (Status.SENT, 2)
    assert len(smtp.to(CSM_INBOX)) == 2  # at least once: never lost, here twice
    assert sweep_now() == {"delivered": 0, "resent": 0, "unknown": 0, "released": 0}


def test_a_journey_email_the_worker_died_sending_is_never_sent_twice(
    api, live, smtp, kill_after_send, sweep_now
):
    kill_after_send.write_text("crashy@example.com")  # not a page an earlier trial left in the engine
    post(api, "user.created", "crashy")
    killed_mid_send(live, kill_after_send)

    (welcome,) = EmailLog.objects.filter(contact__user_id="crashy")
    assert welcome.status == Status.SENDING
    assert len(smtp.to("crashy@example.com")) == 1

    live.restart()  # the engine runs the journey again on the new worker: a replay from the top
    wait_until(
        lambda: JourneyRun.objects.filter(
            journey_id="activation-welcome", contact__user_id="crashy", status="completed"
        ).exists(),
        timeout=ENGINE_REASSIGNS + 20 * DAY,
        what="the journey to run on after the crash",
    )
    swept = sweep_now()

    welcome.refresh_from_db()
    assert swept == {"delivered": 0, "resent": 0, "unknown": 1, "released": 0}
    assert welcome.status == Status.UNKNOWN
    assert welcome.status_reason.startswith("outcome_unknown:")
    assert subjects(smtp, "crashy") == [
        "Welcome to Hogsend — let's get you set up",
        "You haven't tried the key feature yet",
    ]  # the welcome once, and the journey went on past it
    assert EmailLog.objects.filter(contact__user_id="crashy").count() == 2
