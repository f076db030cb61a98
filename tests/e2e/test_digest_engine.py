"""Digests on the real engine: kill -9 the worker while a digest's window is open, and again
between the provider's answer and the record of its email; one email reaches the SMTP server on
loopback, with every collected comment."""

from __future__ import annotations

import pytest

from emails.models import EmailLog
from journeys.models import Digest, JourneyRun
from tests.e2e.conftest import DAY, wait_until

pytestmark = pytest.mark.engine
ENGINE_REASSIGNS = 240  # the engine notices the dead worker by its missing heartbeats


def comment(api, user_id: str, text: str) -> None:
    body = {
        "name": "e2e.comment",
        "userId": user_id,
        "userEmail": f"{user_id}@example.com",
        "eventProperties": {"author": "Grace", "text": text},
    }
    response = api.post("/v1/events", body)
    assert response.status_code == 202, response.content


def run_of(user_id: str, **status) -> JourneyRun | None:
    return JourneyRun.objects.filter(journey_id="e2e-digest", contact__user_id=user_id, **status).first()


def body_of(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def test_a_worker_killed_while_the_window_is_open_still_sends_one_email_with_every_comment(api, live, smtp):
    comment(api, "digesty", "one")
    comment(api, "digesty", "two")
    wait_until(lambda: run_of("digesty", status="waiting"), timeout=60, what="the run to wait for its digest")

    live.kill()  # SIGKILL, mid-window
    comment(api, "digesty", "three")  # the worker is down: ingest still collects them
    comment(api, "digesty", "four")
    live.restart()

    wait_until(
        lambda: run_of("digesty", status="completed"),
        timeout=ENGINE_REASSIGNS + 20 * DAY,
        what="the digest's run to finish after the crash",
    )
    (message,) = smtp.to("digesty@example.com")
    text = body_of(message)
    assert all(word in text for word in ("one", "two", "three", "four")), text
    (log,) = EmailLog.objects.filter(contact__user_id="digesty")
    assert [c["text"] for c in log.props["comments"]] == ["one", "two", "three", "four"]
    assert JourneyRun.objects.filter(journey_id="e2e-digest").count() == 1
    assert list(Digest.objects.values_list("status", "item_count")) == [("closed", 4)]


def test_a_worker_killed_after_the_close_mid_send_never_sends_the_digest_twice(
    api, live, smtp, kill_after_send
):
    kill_after_send.touch()
    for text in ("alpha", "beta", "gamma"):
        comment(api, "closey", text)
    wait_until(
        lambda: not live.alive(), timeout=60 + 10 * DAY, what="the worker to die after the provider call"
    )
    assert not kill_after_send.exists()
    (log,) = EmailLog.objects.filter(contact__user_id="closey")
    assert log.status == EmailLog.Status.SENDING  # the server has it; the process died before the record

    live.restart()  # the engine replays the run: the digest step returns its items, the send its row
    wait_until(
        lambda: run_of("closey", status="completed"),
        timeout=ENGINE_REASSIGNS + 20 * DAY,
        what="the digest's run to finish after the crash",
    )
    assert len(smtp.to("closey@example.com")) == 1
    assert EmailLog.objects.filter(contact__user_id="closey").count() == 1
    log.refresh_from_db()
    assert [c["text"] for c in log.props["comments"]] == ["alpha", "beta", "gamma"]
    assert list(Digest.objects.values_list("status", "item_count")) == [("closed", 3)]
