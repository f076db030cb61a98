"""Retention at volume: exactly what is past its time goes, in batches; nothing live is touched."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from contacts.models import Contact, Event
from emails.models import EmailLog
from journeys.models import JourneyRun, RunStep
from operations.retention import retention_run

pytestmark = pytest.mark.django_db
OLD = timedelta(days=40)


@pytest.fixture
def retention(settings):
    settings.RETENTION_EVENTS_DAYS = 30
    settings.RETENTION_STEPS_DAYS = 30
    settings.RETENTION_EMAILS_DAYS = 30


def contacts(n: int) -> list[Contact]:
    return Contact.objects.bulk_create(
        [Contact(user_id=f"u-{uuid.uuid4().hex}", email=f"{i}@example.com") for i in range(n)]
    )


def events(who: list[Contact], *, age: timedelta, state: str = "dispatched") -> list[Event]:
    at = timezone.now() - age
    return Event.objects.bulk_create(
        [Event(contact=c, name="page.viewed", occurred_at=at, dispatch_state=state) for c in who]
    )


def runs(who: list[Contact], *, status: str, ended_ago: timedelta | None, trigger: list[Event] | None = None):
    now = timezone.now()
    return JourneyRun.objects.bulk_create(
        [
            JourneyRun(
                journey_id="activation-welcome",
                contact=c,
                status=status,
                entered_at=now - timedelta(days=60),
                ended_at=now - ended_ago if ended_ago is not None else None,
                trigger_event=trigger[i] if trigger else None,
            )
            for i, c in enumerate(who)
        ]
    )


def steps(for_runs: list[JourneyRun], per_run: int = 10) -> None:
    now = timezone.now()
    RunStep.objects.bulk_create(
        [RunStep(run=r, seq=s, kind="checkpoint", recorded_at=now) for r in for_runs for s in range(per_run)]
    )


def emails(n: int, *, age: timedelta, for_runs: list[JourneyRun] | None = None) -> list[EmailLog]:
    at = timezone.now() - age
    return EmailLog.objects.bulk_create(
        [
            EmailLog(
                to_email=f"{i}@example.com",
                template="activation/welcome",
                subject="Welcome",
                category="product",
                status="delivered",
                idempotency_key=uuid.uuid4().hex,
                created_at=at,
                run=for_runs[i % len(for_runs)] if for_runs else None,
            )
            for i in range(n)
        ]
    )


@pytest.fixture
def history(retention):
    """Thousands of rows on both sides of every line retention draws."""
    people = contacts(400)
    old_events = events(people * 8, age=OLD)  # 3,200: go
    pending = events(people[:300], age=OLD, state="pending")  # the outbox: stays
    recent = events(people * 2, age=timedelta(days=5))  # 800: stay
    done = runs(people[:200], status="completed", ended_ago=OLD, trigger=old_events[:200])
    exited = runs(people[200:250], status="exited", ended_ago=OLD)
    failed = runs(people[250:300], status="failed", ended_ago=OLD)  # may be retried: keeps its log
    live = runs(people[300:350], status="waiting", ended_ago=None)
    fresh = runs(people[350:400], status="completed", ended_ago=timedelta(days=2))
    steps(done + exited)  # 2,500: go
    steps(failed + live + fresh)  # 1,500: stay
    old_transactional = emails(1500, age=OLD)  # go
    old_of_ended = emails(500, age=OLD, for_runs=done)  # go
    old_of_live = emails(200, age=OLD, for_runs=live)  # stay
    old_of_fresh = emails(100, age=OLD, for_runs=fresh)  # their run ended 2 days ago: stay
    recent_mail = emails(700, age=timedelta(days=3))  # stay
    return {
        "old_events": old_events,
        "kept_events": {e.pk for e in pending + recent},
        "kept_steps_runs": {r.pk for r in failed + live + fresh},
        "gone_mail": {m.pk for m in old_transactional + old_of_ended},
        "kept_mail": {m.pk for m in old_of_live + old_of_fresh + recent_mail},
        "done": done,
    }


def test_retention_deletes_exactly_what_is_past_its_time_in_batches(history):
    seen = []

    reports = retention_run(
        batch_size=500, progress=lambda kind, done, total: seen.append((kind, done, total))
    )

    assert {r.name: (r.matched, r.deleted) for r in reports} == {
        "events": (3200, 3200),
        "step logs": (2500, 2500),
        "email logs": (2000, 2000),
    }
    assert set(Event.objects.values_list("pk", flat=True)) == history["kept_events"]
    assert set(RunStep.objects.values_list("run_id", flat=True).distinct()) == history["kept_steps_runs"]
    assert RunStep.objects.count() == 1500
    assert set(EmailLog.objects.values_list("pk", flat=True)) == history["kept_mail"]
    # Runs stay (only their logs go); a run whose trigger event went keeps no dangling reference.
    assert JourneyRun.objects.count() == 400
    assert not JourneyRun.objects.filter(
        pk__in=[r.pk for r in history["done"]], trigger_event__isnull=False
    ).exists()
    # Batches of at most 500, each reported as it finished.
    assert [done for kind, done, _ in seen if kind == "events"] == [500, 1000, 1500, 2000, 2500, 3000, 3200]


def test_the_dry_run_prints_what_would_go_and_deletes_nothing(history):
    out = StringIO()

    call_command("retention", "--dry-run", stdout=out)

    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "events: would delete 3200",
        "step logs: would delete 2500",
        "email logs: would delete 2000",
    ]
    assert Event.objects.count() == 3200 + 300 + 800
    assert RunStep.objects.count() == 4000
    assert EmailLog.objects.count() == 3000


def test_the_command_deletes_and_reports_with_a_progress_bar(history):
    out, err = StringIO(), StringIO()

    call_command("retention", "--batch-size", "1000", stdout=out, stderr=err)

    assert "events: deleted 3200 (older than 30 days)" in out.getvalue()
    assert "email logs: deleted 2000" in out.getvalue()
    assert "3200/3200" in err.getvalue()
    assert Event.objects.count() == 1100


def test_zero_days_keeps_everything(settings):
    settings.RETENTION_EVENTS_DAYS = 0
    settings.RETENTION_STEPS_DAYS = 0
    settings.RETENTION_EMAILS_DAYS = 0
    events(contacts(10), age=timedelta(days=4000))

    reports = retention_run()

    assert [r.deleted for r in reports] == [0, 0, 0]
    assert Event.objects.count() == 10


@pytest.mark.django_db(transaction=True)
def test_ingest_exits_a_live_run_while_a_retention_batch_holds_its_locks(retention):
    """A live run entered long ago keeps its old trigger event, so a retention batch never locks
    the run that an exit event has to end."""
    import threading

    from django.db import connection, transaction

    from contacts.ingest import event_ingest
    from operations.retention import KINDS

    who = contacts(1)[0]
    old = events([who] * 20, age=OLD)
    [run] = runs([who], status="waiting", ended_ago=None, trigger=old[:1])
    holding, release, failures = threading.Event(), threading.Event(), []

    def one_batch_held_open() -> None:
        try:
            with transaction.atomic():
                kind = KINDS[0]
                ids = list(
                    kind.candidates(timezone.now() - timedelta(days=30)).values_list("pk", flat=True)[:500]
                )
                Event.objects.filter(pk__in=ids).delete()
                holding.set()
                release.wait(30)
        except Exception as error:  # surfaced below
            failures.append(error)
            holding.set()
        finally:
            connection.close()

    batch = threading.Thread(target=one_batch_held_open)
    batch.start()
    assert holding.wait(30)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # a blocked ingest fails here instead of hanging
        result = event_ingest(name="user.deleted", user_id=who.user_id)
    finally:
        release.set()
        batch.join(30)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert failures == []
    assert result.exited_run_ids == [run.id]
    run.refresh_from_db()
    assert run.status == "exited" and run.trigger_event_id == old[0].id
    assert set(Event.objects.filter(contact=who).values_list("pk", flat=True)) == {old[0].pk, result.event.pk}
