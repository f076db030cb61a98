"""An alert rule fires and resolves on the real schedule: `celery -A hogsend worker -B` in a child
process, on this suite's database and Redis db, mailing a real SMTP server on loopback."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from emails.models import EmailLog
from operations import checks
from operations.models import Alert
from operations.services import ALERT_RUNS_KEY
from tests.operations.conftest import email_log
from tests.support import celery_process, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def smtp_sink():
    from aiosmtpd.controller import Controller

    from tests.operations.conftest import closed_port

    class Sink:
        subjects: list[str] = []

        async def handle_DATA(self, server, session, envelope):
            from email import message_from_bytes, policy

            self.subjects.append(message_from_bytes(envelope.content, policy=policy.default)["Subject"])
            return "250 OK"

    sink = Sink()
    sink.subjects = []
    controller = Controller(sink, hostname="127.0.0.1", port=closed_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


@pytest.fixture
def celery_worker_and_beat(transactional_db, smtp_sink, tmp_path):
    _, smtp_port = smtp_sink
    with celery_process(
        tmp_path,
        "-B",
        "--schedule",
        str(tmp_path / "beat-schedule"),
        ALERTS_EVERY_SECONDS="1",
        ALERT_FAILED_SENDS="3",
        ALERT_EMAILS="ops@example.com",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
    ) as proc:
        yield proc


def evaluations() -> int:
    return int(checks.redis_client().get(ALERT_RUNS_KEY) or 0)


def test_a_failed_send_spike_fires_once_on_the_beat_schedule_and_resolves(celery_worker_and_beat, smtp_sink):
    sink, _ = smtp_sink
    wait_until(lambda: evaluations() >= 1, timeout=120, what="beat to run the alert rules")
    # Beat and a worker are alive, as the doctor sees it.
    wait_until(
        lambda: checks.check_celery().status == checks.Status.OK, timeout=120, what="the beat heartbeat"
    )
    wait_until(  # as /v1/health pings: the first answer is enough
        lambda: checks.check_celery(all_workers=False).status == checks.Status.OK,
        timeout=60,
        what="a quick ping",
    )

    for _ in range(3):
        email_log(status=EmailLog.Status.FAILED)
    alert = wait_until(
        lambda: Alert.objects.filter(rule="failed_sends", status=Alert.Status.FIRING).first(),
        timeout=60,
        what="the failed-send alert to fire",
    )
    assert alert.value == 3
    seen = evaluations()
    wait_until(lambda: evaluations() >= seen + 3, timeout=60, what="three more evaluations")
    assert Alert.objects.filter(rule="failed_sends").count() == 1
    wait_until(lambda: "[Hogsend] FIRING: failed_sends" in sink.subjects, timeout=30, what="the alert mail")

    # The spike ages out of the window: the same incident resolves.
    EmailLog.objects.update(created_at=timezone.now() - timedelta(hours=2))
    wait_until(
        lambda: Alert.objects.filter(pk=alert.pk, status=Alert.Status.RESOLVED).exists(),
        timeout=60,
        what="the alert to resolve",
    )
    wait_until(
        lambda: "[Hogsend] resolved: failed_sends" in sink.subjects, timeout=30, what="the resolved mail"
    )

    assert Alert.objects.filter(rule="failed_sends").count() == 1
    assert [s for s in sink.subjects if "failed_sends" in s] == [
        "[Hogsend] FIRING: failed_sends",
        "[Hogsend] resolved: failed_sends",
    ]


def test_a_worker_without_beat_is_failing(celery_worker_and_beat):
    wait_until(
        lambda: checks.check_celery().status == checks.Status.OK, timeout=120, what="the beat heartbeat"
    )

    def stale_beat():
        # As if beat had stopped ten minutes ago while the worker kept answering pings. Set again
        # on each try: beat may write between, and a worker busy on a loaded machine may miss a ping.
        checks.redis_client().set(checks.BEAT_HEARTBEAT_KEY, str(time.time() - 600))
        result = checks.check_celery()
        return result if "worker(s) answer" in result.summary else None

    result = wait_until(stale_beat, timeout=60, what="a ping answered while beat is stale")

    assert result.status == checks.Status.FAILING
    assert "but beat last ran 60" in result.summary  # 600 s, and the second the ping took
