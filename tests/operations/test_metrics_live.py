"""Metrics scraped from a running web server (gunicorn, two worker processes) while a running
journey worker relays the events and runs the journeys: every process counts into one scrape."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from contacts.models import Event
from contacts.services import api_key_create
from journeys.models import JourneyRun
from tests.operations.conftest import closed_port
from tests.operations.test_metrics import samples
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.engine


def http(method: str, url: str, body: dict | None = None, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


@pytest.fixture
def processes(transactional_db, tmp_path):
    """gunicorn and runworker on this suite's database, Redis db, a fresh metrics directory and a
    namespace of their own on the shared engine."""
    subprocess.run([str(ROOT / "bin" / "engine"), "start"], check=True, timeout=600)
    db = django_settings.DATABASES["default"]
    port = closed_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "HATCHET_CLIENT_NAMESPACE": f"ops{uuid.uuid4().hex[:8]}_",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "DB_CONN_MAX_AGE": "0",
        "METRICS_TOKEN": "",
        "LOG_LEVEL": "WARNING",
    }
    (tmp_path / "metrics").mkdir()
    logs = open(tmp_path / "processes.log", "wb")
    started = [
        subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", "hogsend/gunicorn.conf.py", "hogsend.wsgi"],
            cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "runworker"], cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT
        ),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http("GET", f"{base}/metrics")[0] == 200, timeout=60, what="gunicorn to answer")
        wait_until(
            lambda: b"waiting for tasks" in (tmp_path / "processes.log").read_bytes(),
            timeout=90,
            what="the worker",
        )
        yield base
    finally:
        for proc in started:
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        logs.close()
        print((tmp_path / "processes.log").read_text(errors="replace")[-4000:])


def test_one_scrape_counts_the_web_processes_and_the_journey_worker(processes):
    base = processes
    _, key = api_key_create(name="metrics-test", scopes=["ingest"])
    users = [f"metrics-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for user in users:
        status, _ = http(
            "POST",
            f"{base}/v1/events",
            {"name": "user.created", "userId": user, "email": f"{user}@example.com"},
            key,
        )
        assert status == 202
    assert http("POST", f"{base}/v1/events", {"name": "user.created"}, key)[0] == 422

    # The worker's relay pushes the events; the engine hands them to the worker's journeys.
    wait_until(
        lambda: not Event.objects.filter(dispatch_state="pending").exists(), timeout=60, what="the relay"
    )
    wait_until(
        lambda: JourneyRun.objects.filter(journey_id="activation-welcome").count() == 5,
        timeout=90,
        what="five runs of activation-welcome",
    )

    scrapes = [samples(http("GET", f"{base}/metrics")[1]) for _ in range(4)]  # both web processes answer

    for got in scrapes:
        assert got[("hogsend_events_ingested_total", (("outcome", "accepted"),))] == 5
        assert got[("hogsend_events_rejected_total", (("status", "422"),))] == 1
        assert (
            got[
                (
                    "hogsend_http_request_duration_seconds_count",
                    (("method", "POST"), ("route", "v1/events"), ("status", "202")),
                )
            ]
            == 5
        )
        # Counted in the worker process, by its outbox relay.
        assert got[("hogsend_outbox_pushed_total", ())] >= 5
        assert got[("hogsend_journey_runs_started_total", (("journey", "activation-welcome"),))] == 5
        assert got[("hogsend_outbox_pending", ())] == 0
