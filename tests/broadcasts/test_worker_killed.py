"""kill -9 during a real broadcast: a real Celery worker process sends a broadcast to an SMTP server
on loopback, is SIGKILLed mid-broadcast and restarted; the server counts what each recipient got.

Beat's part (the broadcasts tick and the email sweep, every few seconds) is played by this test,
with short timeouts, so the recovery happens within the test's patience."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from pathlib import Path

import pytest

from broadcasts.models import Broadcast
from broadcasts.services import broadcast_create
from broadcasts.tasks import broadcast_tick_task
from broadcasts.templates import ANNOUNCEMENT
from contacts.models import Contact
from emails.models import EmailLog
from emails.tasks import email_sweep_task
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS
from tests.support import celery_process, free_port, wait_until

RECIPIENTS = 200


class CountingSink:
    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.update(envelope.rcpt_tos)
        return "250 OK"

    def total(self) -> int:
        with self.lock:
            return sum(self.received.values())


@pytest.fixture
def sink():
    from aiosmtpd.controller import Controller

    counting = CountingSink()
    controller = Controller(counting, hostname="127.0.0.1", port=free_port())
    controller.start()
    counting.port = controller.port
    yield counting
    controller.stop()


@pytest.fixture
def audience(transactional_db):
    Contact.objects.bulk_create(
        Contact(user_id=f"bulk-{i}", email=f"bulk{i}@example.com", properties={"plan": "pro"})
        for i in range(RECIPIENTS)
    )
    return sorted(f"bulk{i}@example.com" for i in range(RECIPIENTS))


@pytest.fixture
def worker(sink, tmp_path, settings):
    """`worker(**env)` starts a Celery worker on the sink; returns its process."""
    from hogsend.celery import app

    app.control.purge()
    settings.BROADCAST_CLAIM_TIMEOUT_SECONDS = 3
    settings.BROADCAST_STALL_SECONDS = 2
    settings.EMAIL_SENDING_TIMEOUT_SECONDS = 2
    settings.EMAIL_QUEUED_TIMEOUT_SECONDS = 3
    started = []

    def start(name: str, **env: str):
        workdir = tmp_path / name
        workdir.mkdir()
        context = celery_process(
            workdir,
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(sink.port),
            BROADCAST_DRAINS="1",
            BROADCAST_BATCH_SIZE="20",
            **env,
        )
        proc = context.__enter__()
        started.append(context)
        return proc

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


def beat_until_finished(broadcast: Broadcast) -> None:
    """What beat does every few seconds, until the broadcast is done and no email is in flight."""

    def finished() -> bool:
        broadcast_tick_task.apply()
        email_sweep_task.apply()
        broadcast.refresh_from_db()
        in_flight = EmailLog.objects.filter(status__in=["queued", "sending"]).exists()
        return broadcast.status == Broadcast.Status.COMPLETED and not in_flight

    wait_until(finished, timeout=180, interval=1, what="the broadcast to finish after the restart")


def start_broadcast() -> Broadcast:
    return broadcast_create(
        name="Dark mode",
        template=ANNOUNCEMENT,
        props=ANNOUNCEMENT_PROPS,
        conditions=[{"property": "plan", "operator": "eq", "value": "pro"}],
        rate=100,
    )


def test_a_worker_killed_at_a_random_moment_mid_broadcast_mails_no_one_twice(audience, sink, worker):
    first = worker("first")
    broadcast = start_broadcast()
    wait_until(
        lambda: sink.total() >= RECIPIENTS // 3, timeout=120, what="a third of the broadcast to go out"
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert sink.total() < RECIPIENTS  # killed mid-broadcast

    worker("second")
    beat_until_finished(broadcast)

    counts = Counter({address: sink.received[address] for address in audience})
    assert max(counts.values()) == 1  # nobody got two
    unknown = set(EmailLog.objects.filter(status="unknown").values_list("to_email", flat=True))
    missing = {address for address, n in counts.items() if n == 0}
    # The one message whose provider call the kill may have cut is `unknown`: never sent again.
    assert missing <= unknown and len(unknown) <= 1
    assert sum(counts.values()) == RECIPIENTS - len(missing)
    assert EmailLog.objects.count() == RECIPIENTS


def test_a_worker_killed_between_a_send_and_its_record_mails_everyone_exactly_once(
    audience, sink, worker, tmp_path
):
    kill_file = tmp_path / "kill-after-send"
    first = worker("first", EMAIL_FAULT_KILL_AFTER_SEND_FILE=str(kill_file))
    broadcast = start_broadcast()
    wait_until(
        lambda: sink.total() >= RECIPIENTS // 3, timeout=120, what="a third of the broadcast to go out"
    )
    kill_file.touch()  # the next send kills its worker right after the server said 250
    first.wait(timeout=60)
    assert not Path(kill_file).exists()

    worker("second")
    beat_until_finished(broadcast)

    assert [sink.received[address] for address in audience] == [1] * RECIPIENTS
    assert EmailLog.objects.filter(status="unknown").count() == 1  # the one the kill cut; not resent
    assert EmailLog.objects.filter(status="sent").count() == RECIPIENTS - 1
