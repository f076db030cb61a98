"""Providers: EMAIL_PROVIDER selection, Resend's Idempotency-Key header, transient vs permanent failures.

The Resend API is played by a real HTTP server on loopback; anymail's real Resend backend talks to it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from emails.models import EmailLog
from emails.provider_config import provider_settings
from emails.tasks import email_deliver_task

Status = EmailLog.Status


class FakeResend:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: list[tuple[int, dict]] = []

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                status, reply = (
                    fake.replies.pop(0) if fake.replies else (200, {"id": f"re_{len(fake.requests)}"})
                )
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"


@pytest.fixture
def resend(settings):
    fake = FakeResend()
    url = fake.start()
    settings.EMAIL_BACKEND = "emails.backends.ResendEmailBackend"
    settings.EMAIL_PROVIDER = "resend"
    settings.ANYMAIL = {"RESEND_API_KEY": "re_test_key", "RESEND_API_URL": url}
    yield fake
    fake.server.shutdown()


def _env(**values: str) -> environ.Env:
    env = environ.Env()
    env.ENVIRON = values  # type: ignore[assignment]
    return env


def test_email_provider_selects_the_backend_and_reads_its_keys_from_the_environment():
    assert provider_settings("console", _env())[0] == "django.core.mail.backends.console.EmailBackend"
    assert provider_settings("smtp", _env())[0] == "django.core.mail.backends.smtp.EmailBackend"
    backend, anymail = provider_settings(
        "resend", _env(RESEND_API_KEY="re_1", RESEND_SIGNING_SECRET="whsec_x", EMAIL_WEBHOOK_SECRET="u:p")
    )
    assert backend == "emails.backends.ResendEmailBackend"
    assert anymail == {"RESEND_API_KEY": "re_1", "RESEND_SIGNING_SECRET": "whsec_x", "WEBHOOK_SECRET": "u:p"}
    assert provider_settings("postmark", _env(POSTMARK_SERVER_TOKEN="pm"))[1] == {
        "POSTMARK_SERVER_TOKEN": "pm"
    }
    assert provider_settings("ses", _env(AWS_REGION="eu-west-1"))[1] == {
        "AMAZON_SES_CLIENT_PARAMS": {"region_name": "eu-west-1"}
    }
    assert (
        provider_settings("sendgrid", _env(SENDGRID_API_KEY="sg"))[0]
        == "anymail.backends.sendgrid.EmailBackend"
    )
    assert (
        provider_settings("mailgun", _env(MAILGUN_API_KEY="mg"))[0] == "anymail.backends.mailgun.EmailBackend"
    )


def test_a_provider_without_its_key_or_an_unknown_provider_fails_at_start_up():
    with pytest.raises(ImproperlyConfigured, match="needs POSTMARK_SERVER_TOKEN"):
        provider_settings("postmark", _env())
    with pytest.raises(ImproperlyConfigured, match="must be one of"):
        provider_settings("pigeon", _env())


@pytest.mark.django_db
def test_resend_gets_the_email_logs_idempotency_key_as_its_idempotency_header(
    resend, make_contact, send_welcome
):
    contact = make_contact()

    log = send_welcome(contact, idempotency_key="welcome:user_1")

    assert log.status == Status.SENT
    assert log.provider_message_id == "re_1"
    assert log.provider == "resend"
    (request,) = resend.requests
    assert request["path"] == "/emails"
    assert request["headers"]["Idempotency-Key"] == "welcome:user_1"
    assert request["json"]["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        "email_id" in request["headers"].get("X-Metadata", "") or "X-Metadata" in request["json"]["headers"]
    )


@pytest.mark.django_db
def test_a_permanent_provider_error_fails_at_once_with_the_reason(resend, make_contact, send_welcome):
    resend.replies = [(422, {"name": "validation_error", "message": "Invalid `to` field."})]

    log = send_welcome(make_contact())

    assert log.status == Status.FAILED
    assert "Invalid `to` field" in log.status_reason
    assert log.attempts == 1
    assert len(resend.requests) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", [503, 429])
def test_a_transient_provider_error_stays_queued_and_the_task_retries_it(
    resend, make_contact, send_welcome, monkeypatch, status
):
    enqueued: list[str] = []
    monkeypatch.setattr("emails.services._enqueue_retry", enqueued.append)
    resend.replies = [(status, {"message": "try later"})]

    log = send_welcome(make_contact())

    assert log.status == Status.QUEUED
    assert log.status_reason.startswith("retrying:")
    assert enqueued == [str(log.pk)]  # scheduled after commit

    result = email_deliver_task.apply(args=[enqueued[0]])

    assert result.get() == Status.SENT
    log.refresh_from_db()
    assert (log.status, log.attempts) == (Status.SENT, 2)
    keys = {r["headers"]["Idempotency-Key"] for r in resend.requests}
    assert len(resend.requests) == 2 and len(keys) == 1  # the retry is deduped on Resend's side too


@pytest.mark.django_db(transaction=True)
def test_the_task_gives_up_after_its_retries_and_records_failed(
    resend, make_contact, send_welcome, monkeypatch
):
    monkeypatch.setattr("emails.services._enqueue_retry", lambda email_id: None)
    resend.replies = [(500, {"message": "down"})] * 20
    log = send_welcome(make_contact())

    email_deliver_task.apply(args=[str(log.pk)])

    log.refresh_from_db()
    assert log.status == Status.FAILED
    assert log.status_reason.startswith(f"gave up after {email_deliver_task.max_retries + 2} attempts")


@pytest.mark.django_db(transaction=True)
def test_a_connection_failure_is_transient(settings, make_contact, send_welcome, monkeypatch):
    from tests.emails.conftest import free_port

    monkeypatch.setattr("emails.services._enqueue_retry", lambda email_id: None)
    settings.EMAIL_BACKEND = "emails.backends.ResendEmailBackend"
    settings.ANYMAIL = {"RESEND_API_KEY": "k", "RESEND_API_URL": f"http://127.0.0.1:{free_port()}/"}
    with transaction.atomic():
        log = send_welcome(make_contact())
    assert log.status == Status.QUEUED
    assert "retrying" in log.status_reason
