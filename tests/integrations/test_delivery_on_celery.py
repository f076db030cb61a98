"""Deliveries on a real Celery worker (`celery -A hogsend worker` in a child process, on this
suite's database and Redis db): enqueued after commit, retried through failures with backoff, and
dead-lettered after the last attempt."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from integrations.lifecycle import lifecycle_emit
from integrations.models import Delivery, Destination
from tests.support import celery_process, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    from hogsend.celery import app

    app.control.purge()  # nothing left over from an earlier run on this Redis db
    # four attempts, a second apart
    with celery_process(tmp_path, INTEGRATIONS_RETRY_SCHEDULE="1,1,1") as proc:
        yield proc


def emit_committed() -> Delivery:
    with transaction.atomic():
        [delivery_id] = lifecycle_emit(type="journey.failed", data={"runId": "r", "journeyId": "welcome"})
    return Delivery.objects.get(pk=delivery_id)


def test_the_worker_retries_through_failures_then_dead_letters_after_the_last_attempt(
    celery_worker, fake_receiver
):
    receiver = fake_receiver("webhook")
    destination = Destination.objects.create(name="ours", kind="webhook", url=receiver.url + "/h")
    receiver.secret = destination.secret

    receiver.fail_next = 2
    flaky = emit_committed()
    flaky = wait_until(
        lambda: Delivery.objects.filter(pk=flaky.pk, status=Delivery.Status.DELIVERED).first(),
        timeout=120,
        what="the delivery to get through after two failures",
    )
    assert flaky.attempts == 3
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(flaky.pk)] * 3

    receiver.fail_next = 100
    doomed = emit_committed()
    doomed = wait_until(
        lambda: Delivery.objects.filter(pk=doomed.pk, status=Delivery.Status.DEAD).first(),
        timeout=120,
        what="the delivery to become a dead letter",
    )
    assert doomed.attempts == 4
    assert "503" in doomed.last_error
