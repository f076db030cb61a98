from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact, Event
from emails.models import EmailLog
from journeys.models import JourneyRun

# Metrics written by this test process go to a directory of its own: every other process on the
# machine (other test runs, a local deployment) writes to the default one, and a scrape sums them.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hogsend-metrics-")
atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_redis(settings):
    """Worker heartbeats, beat's heartbeat and alert counters start empty (this suite's Redis db)."""
    from operations.checks import redis_client

    client = redis_client()  # taken now: a test may point REDIS_URL somewhere dead
    client.flushdb()
    yield
    client.flushdb()


def contact(user_id: str | None = None) -> Contact:
    user_id = user_id or f"u-{uuid.uuid4().hex[:8]}"
    return Contact.objects.create(user_id=user_id, email=f"{user_id}@example.com")


def event(who: Contact, *, name: str = "user.created", age: timedelta = timedelta(0), **fields) -> Event:
    """An event stored `age` ago (received_at is set by the database, so move it afterwards)."""
    at = timezone.now() - age
    row = Event.objects.create(contact=who, name=name, occurred_at=at, **fields)
    Event.objects.filter(pk=row.pk).update(received_at=at)
    row.refresh_from_db()
    return row


def email_log(
    *, status: str, created_at: datetime | None = None, provider: str = "smtp", run=None, **fields
) -> EmailLog:
    return EmailLog.objects.create(
        to_email=f"{uuid.uuid4().hex[:8]}@example.com",
        template="activation/welcome",
        subject="Welcome",
        category="product",
        status=status,
        idempotency_key=uuid.uuid4().hex,
        created_at=created_at or timezone.now(),
        provider=provider,
        run=run,
        **fields,
    )


def journey_run(
    who: Contact, *, journey_id: str = "activation-welcome", status: str = "completed", ended_ago=None
) -> JourneyRun:
    now = timezone.now()
    ended = None if status in ("active", "waiting") else now - (ended_ago or timedelta(0))
    return JourneyRun.objects.create(
        journey_id=journey_id,
        contact=who,
        status=status,
        entered_at=(ended or now) - timedelta(days=1),
        ended_at=ended,
    )
