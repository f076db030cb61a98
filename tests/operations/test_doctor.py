"""Each doctor check on the real stores, and what it says when its part is broken."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.migrations.recorder import MigrationRecorder

from journeys.registry import registry
from journeys.runtime.engine import reset_client
from journeys.runtime.worker import Heartbeat
from operations import checks
from operations.checks import Status
from tests.operations.conftest import closed_port, contact, event

pytestmark = pytest.mark.django_db


def loaded_journeys() -> list[str]:
    return sorted(j.id for j in registry.loaded())


def test_the_database_check_names_a_migration_that_was_not_applied():
    assert checks.check_database().status == Status.OK
    MigrationRecorder.Migration.objects.filter(app="operations", name="0001_initial").delete()

    result = checks.check_database()

    assert result.status == Status.FAILING
    assert "operations.0001_initial" in result.detail["unapplied"]
    assert "migrate" in result.action


def test_the_redis_check_fails_when_redis_does_not_answer(settings):
    assert checks.check_redis().status == Status.OK
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    result = checks.check_redis()

    assert result.status == Status.FAILING
    assert "REDIS_URL" in result.action


@pytest.fixture
def engine_client_reset(engine):
    reset_client()
    yield
    reset_client()


@pytest.mark.engine
def test_the_engine_check_reports_the_version_and_the_tokens_tenant(engine_client_reset):
    result = checks.check_engine()

    assert result.status == Status.OK, result.summary
    assert result.detail["version"].startswith("v")
    assert result.detail["tenant_id"]
    assert f"tenant {result.detail['tenant']}" in result.summary


def test_the_engine_check_fails_when_the_engine_is_not_there(settings, tmp_path, engine_client_reset):
    port = closed_port()
    engine_file = tmp_path / "engine.json"
    engine_file.write_text(
        json.dumps(
            {
                "token": "not-a-token",
                "host_port": f"127.0.0.1:{port}",
                "server_url": f"http://127.0.0.1:{port}",
                "tenant_id": "707d0855-80ab-4e1f-a156-f1c4546cbf52",
            }
        )
    )
    settings.HOGSEND_ENGINE_FILE = engine_file

    result = checks.check_engine()

    assert result.status == Status.FAILING
    assert "bin/engine start" in result.action


def test_no_live_worker_is_failing():
    result = checks.check_workers()

    assert result.status == Status.FAILING
    assert "runworker" in result.action


def test_a_loaded_journey_that_no_worker_serves_is_failing():
    journeys = loaded_journeys()
    assert len(journeys) >= 2
    Heartbeat("hogsend-web1-100", journeys[1:]).beat()

    result = checks.check_workers()

    assert result.status == Status.FAILING
    assert result.detail["unserved"] == [journeys[0]]
    assert journeys[0] in result.summary


def test_workers_serving_every_journey_are_listed_with_what_they_serve():
    journeys = loaded_journeys()
    Heartbeat("hogsend-web1-100", journeys[:1]).beat()
    Heartbeat("hogsend-web2-200", journeys[1:]).beat()

    result = checks.check_workers()

    assert result.status == Status.OK
    assert [w["worker"] for w in result.detail["workers"]] == ["hogsend-web1-100", "hogsend-web2-200"]
    assert result.detail["workers"][1]["journeys"] == journeys[1:]


def test_no_celery_worker_is_failing():
    # Nothing consumes this suite's broker (its own Redis db) outside the Celery tests.
    result = checks.check_celery()

    assert result.status == Status.FAILING
    assert "celery -A hogsend worker -B" in result.action


def test_an_outbox_event_pending_past_the_alert_threshold_is_failing(settings):
    settings.ALERT_OUTBOX_LAG_SECONDS = 300
    assert checks.check_outbox().status == Status.OK
    event(contact(), age=timedelta(minutes=10))

    result = checks.check_outbox()

    assert result.status == Status.FAILING
    assert result.detail["pending"] == 1
    assert result.detail["oldest_age_seconds"] >= 600


def test_an_outbox_a_little_behind_is_degraded(settings):
    settings.DOCTOR_OUTBOX_DEGRADED_SECONDS = 60
    settings.ALERT_OUTBOX_LAG_SECONDS = 300
    event(contact(), age=timedelta(minutes=2))
    event(contact(), age=timedelta(hours=1), dispatch_state="dispatched")

    result = checks.check_outbox()

    assert result.status == Status.DEGRADED
    assert result.detail["pending"] == 1


def test_a_provider_key_of_the_wrong_shape_is_failing(settings):
    settings.EMAIL_PROVIDER = "resend"
    settings.EMAIL_BACKEND = "emails.backends.ResendEmailBackend"
    settings.ANYMAIL = {"RESEND_API_KEY": "SG.this-is-a-sendgrid-key.not-resend"}

    result = checks.check_email_provider()

    assert result.status == Status.FAILING
    assert "RESEND_API_KEY" in result.summary
    assert "re_" in result.action

    settings.ANYMAIL = {"RESEND_API_KEY": "re_123456789abcdef"}
    assert checks.check_email_provider().status == Status.OK


def test_an_smtp_provider_without_a_host_is_failing(settings):
    settings.EMAIL_PROVIDER = "smtp"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = ""

    assert checks.check_email_provider().status == Status.FAILING


def test_a_backend_that_sends_nowhere_is_degraded(settings):
    settings.EMAIL_PROVIDER = "console"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

    assert checks.check_email_provider().status == Status.DEGRADED


def test_a_missing_metrics_directory_is_failing(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    assert checks.check_metrics_dir().status == Status.FAILING

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert checks.check_metrics_dir().status == Status.OK


def test_a_plain_http_public_url_in_production_is_failing(settings):
    settings.DEBUG = False
    settings.PUBLIC_BASE_URL = "http://mail.example.com"

    result = checks.check_public_url()

    assert result.status == Status.FAILING
    assert "https" in result.action

    settings.PUBLIC_BASE_URL = "https://mail.example.com"
    assert checks.check_public_url().status == Status.OK


def test_the_default_secret_key_in_production_is_failing(settings):
    settings.DEBUG = False
    settings.PUBLIC_BASE_URL = "https://mail.example.com"
    settings.SECRET_KEY = "dev-only-insecure-key-change-me"

    result = checks.check_secret_key()

    assert result.status == Status.FAILING
    assert "SECRET_KEY" in result.action

    settings.SECRET_KEY = "a-long-random-value-nobody-else-has-0123456789"
    assert checks.check_secret_key().status == Status.OK


def test_doctor_prints_one_line_per_check_and_exits_non_zero_when_one_fails(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    out = StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("doctor", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == len(checks.CHECKS)
    redis_line = next(line for line in lines if " redis " in line)
    assert "failing" in redis_line and "REDIS_URL" in redis_line
    assert "redis" in str(failed.value)


def test_doctor_as_json_lists_every_check(settings):
    out = StringIO()
    with pytest.raises(CommandError):  # no worker runs during this test
        call_command("doctor", "--json", stdout=out)

    names = [c["name"] for c in json.loads(out.getvalue())]
    assert names == [
        "database",
        "redis",
        "engine",
        "workers",
        "celery",
        "outbox",
        "email",
        "metrics",
        "public_url",
        "secret_key",
    ]


def test_doctor_run_as_a_command_exits_1_when_postgresql_is_unreachable(settings):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://hogsend@127.0.0.1:{closed_port()}/hogsend",
        "REDIS_URL": settings.REDIS_URL,
    }

    done = subprocess.run(
        [sys.executable, "manage.py", "doctor"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    database = next(line for line in done.stdout.splitlines() if " database " in line)
    assert database.startswith("failing") and "PostgreSQL unreachable" in database
    assert "fix DATABASE_URL" in database
