"""End-to-end fixtures: a real Hatchet engine, a real worker process, a real SMTP server.

Journeys run with time compressed (`HOGSEND_TIME_SCALE`): a journey day lasts `DAY` seconds.
Every session uses its own Hatchet namespace, so nothing else connected to the engine interferes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCALE = 43200  # a journey day lasts two seconds
DAY = 86400 / SCALE
CSM_INBOX = "csm-team@example.com"
APPROVAL_INBOX = "approvals-team@example.com"
SUPPORT_INBOX = "support-team@example.com"
SALES_INBOX = "sales-team@example.com"

pytestmark = pytest.mark.engine


class SmtpSink:
    """A real SMTP server on loopback that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.lock = threading.Lock()
        self.port = _free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
            )
        return "250 OK"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for m in self.messages if address in m["To"]]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smtp():
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


class WorkerProcess:
    """`manage.py runworker` in a child process, pointed at the test database."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / "artifacts" / "e2e-worker.log"

    def start(self) -> None:
        self.log.parent.mkdir(exist_ok=True)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runworker"], cwd=ROOT, env=self.env, stdout=out, stderr=out
        )
        wait_until(
            lambda: b"waiting for tasks" in self.log.read_bytes().split(b"== start")[-1],
            timeout=60,
            what="worker start",
        )

    def mark(self) -> None:
        self.log.parent.mkdir(exist_ok=True)
        with open(self.log, "ab") as f:
            f.write(b"\n== start\n")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def restart(self) -> None:
        self.kill()
        self.mark()
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def e2e_env(engine, smtp, django_db_setup, django_db_blocker):
    from django.conf import settings

    db = settings.DATABASES["default"]
    namespace = f"e2e{uuid.uuid4().hex[:8]}_"
    os.environ["HATCHET_CLIENT_NAMESPACE"] = namespace
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "HATCHET_CLIENT_NAMESPACE": namespace,
        "HOGSEND_TIME_SCALE": str(SCALE),
        "HOGSEND_JOURNEY_MODULES": "journeys.shipped,tests.e2e.journeys,tests.e2e.invariant_journeys",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "CSM_ALERT_EMAIL": CSM_INBOX,
        "APPROVAL_ALERT_EMAIL": APPROVAL_INBOX,
        "SUPPORT_ALERT_EMAIL": SUPPORT_INBOX,
        "LEAD_ALERT_EMAIL": SALES_INBOX,
        "DB_CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
        # Inert until a test creates the file (see `kill_after_send`).
        "EMAIL_FAULT_KILL_AFTER_SEND_FILE": str(ROOT / "artifacts" / f"{namespace}kill-after-send"),
    }
    return env


@pytest.fixture
def kill_after_send(e2e_env):
    """Touch the returned path and the worker's next send SIGKILLs its process between the
    provider's answer and the record, once (emails.delivery's fault point); write an address
    into it and only a send to that address does."""
    path = Path(e2e_env["EMAIL_FAULT_KILL_AFTER_SEND_FILE"])
    path.parent.mkdir(exist_ok=True)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def live(transactional_db, e2e_env, smtp, settings):
    """Per test: compressed time in this process too, an empty inbox, and a fresh worker process.

    The worker is killed before the test database is flushed, so no journey of this test writes
    into the next one.
    """
    from journeys.registry import load_journey_modules, registry
    from journeys.runtime.engine import reset_client
    from tests.e2e import journeys as e2e_journeys

    settings.HOGSEND_TIME_SCALE = SCALE
    settings.CSM_ALERT_EMAIL = CSM_INBOX
    load_journey_modules(["tests.e2e.journeys"])
    reset_client()
    smtp.clear()
    worker = WorkerProcess(e2e_env)
    worker.mark()
    worker.start()
    yield worker
    worker.kill()
    for journey in e2e_journeys.JOURNEYS:
        registry.unregister(journey.id)
