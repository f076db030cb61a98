"""The email sweep: a row left queued is delivered; a row a crash left `sending` is settled by its
category — operator and transactional mail is sent again, any other is marked `unknown` and never
sent twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from emails.models import EmailLog
from emails.status import email_status_advance
from emails.sweep import email_sweep
from emails.tasks import email_sweep_task
from tests.support import celery_process, wait_until

Status = EmailLog.Status


@pytest.fixture
def eager_celery(monkeypatch):
    from hogsend.celery import app

    monkeypatch.setitem(app.conf, "CELERY_TASK_ALWAYS_EAGER", True)


def left_behind(contact: Any, *, status: str, category: str, minutes_ago: float, **fields: Any) -> EmailLog:
    """A row as a dead process left it: queued before its provider call, or sending during it."""
    log = EmailLog.objects.create(
        to_email=contact.email if contact else "csm@example.com",
        contact=contact,
        template="activation/welcome" if contact else "transactional/csm-alert",
        subject="Left behind",
        category=category,
        props={"first_name": "Ada"}
        if contact
        else {"customer_email": "cto@bigco.example", "customer_id": "u1", "seats": 5},
        status=status,
        idempotency_key=f"left-{status}-{category}-{minutes_ago}",
        created_at=timezone.now(),
        attempts=1 if status == Status.SENDING else 0,
        **fields,
    )
    EmailLog.objects.filter(pk=log.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes_ago))
    return log


@pytest.mark.django_db
def test_a_journey_email_caught_sending_is_marked_unknown_and_never_sent_again(
    smtp_server, make_contact, eager_celery
):
    log = left_behind(make_contact(), status=Status.SENDING, category="journey", minutes_ago=11)

    email_sweep_task.apply()
    email_sweep_task.apply()

    log.refresh_from_db()
    assert log.status == Status.UNKNOWN
    assert log.status_reason.startswith("outcome_unknown:")
    assert smtp_server.messages == []


@pytest.mark.django_db
def test_an_operator_page_caught_sending_is_sent_again(smtp_server, eager_celery):
    page = left_behind(
        None, status=Status.SENDING, category="transactional", minutes_ago=11, operator_mail=True
    )

    email_sweep_task.apply()

    page.refresh_from_db()
    assert (page.status, page.attempts) == (Status.SENT, 2)
    assert [m["To"] for m in smtp_server.messages] == ["csm@example.com"]


@pytest.mark.django_db
def test_a_send_in_progress_and_a_fresh_queued_row_are_left_alone(make_contact):
    contact = make_contact()
    calling = left_behind(contact, status=Status.SENDING, category="journey", minutes_ago=1)
    waiting = left_behind(contact, status=Status.QUEUED, category="journey", minutes_ago=1)
    lost = left_behind(contact, status=Status.QUEUED, category="journey", minutes_ago=16)

    swept = email_sweep()

    assert (swept.deliver, swept.unknown, swept.resent) == ([lost.pk], 0, 0)
    assert EmailLog.objects.get(pk=calling.pk).status == Status.SENDING
    assert email_sweep().deliver == []  # handed to a delivery: not handed again at once
    assert email_sweep(now=timezone.now() + timedelta(minutes=16)).deliver == [waiting.pk, lost.pk]


@pytest.mark.django_db
def test_a_provider_event_for_an_unknown_email_shows_it_went_out(make_contact):
    log = left_behind(make_contact(), status=Status.SENDING, category="journey", minutes_ago=11)
    email_sweep()

    assert email_status_advance(email_id=log.pk, to=Status.DELIVERED)
    assert not email_status_advance(email_id=log.pk, to=Status.SENT)


def test_the_sweep_runs_on_the_beat_schedule():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["emails-sweep"]["task"] == email_sweep_task.name == "emails.sweep"


@pytest.mark.django_db(transaction=True)
def test_a_row_stuck_queued_is_delivered_by_the_sweep_on_a_real_celery_beat(
    smtp_server, make_contact, tmp_path
):
    from hogsend.celery import app

    app.control.purge()
    stuck = left_behind(make_contact(), status=Status.QUEUED, category="journey", minutes_ago=1)

    with celery_process(
        tmp_path,
        "-B",
        "--schedule",
        str(tmp_path / "beat-schedule"),
        EMAIL_SWEEP_SECONDS="1",
        EMAIL_QUEUED_TIMEOUT_SECONDS="30",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
    ):
        wait_until(
            lambda: EmailLog.objects.filter(pk=stuck.pk, status=Status.SENT).exists(),
            timeout=120,
            what="the sweep to deliver the stuck row",
        )

    assert len(smtp_server.messages) == 1
    assert smtp_server.envelopes[0].rcpt_tos == [stuck.to_email]
