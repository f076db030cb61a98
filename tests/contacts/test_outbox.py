"""The outbox relay's unit of work on a real PostgreSQL: what it claims, pushes, skips and sets
aside, and that two relays never hold the same event. (On the real engine: tests/e2e.)"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from contacts.ingest import event_ingest
from contacts.models import Contact, Event
from contacts.outbox import awaited_event_register, event_engine_payload, outbox_relay_batch

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    def __init__(self, *, wanted=("user.created",), fail: bool = False, pause: float = 0.0) -> None:
        self.names = set(wanted)
        self.fail = fail
        self.pause = pause
        self.delivered: list = []
        self.cancelled: list = []
        self.lock = threading.Lock()

    def wanted(self, name: str) -> bool:
        return name in self.names

    def deliver(self, items) -> None:
        if self.fail:
            raise ConnectionError("engine unreachable")
        time.sleep(self.pause)
        with self.lock:
            self.delivered.extend(i.id for i in items)

    def cancel(self, run_ids) -> None:
        self.cancelled.extend(run_ids)

    def batch(self, limit: int = 500):
        return outbox_relay_batch(wanted=self.wanted, deliver=self.deliver, cancel=self.cancel, limit=limit)


def ingest(name: str, user: str = "u1"):
    return event_ingest(name=name, user_id=user).event


def state(event) -> str:
    return Event.objects.filter(pk=event.pk).values_list("dispatch_state", flat=True).get()


def test_the_relay_pushes_what_a_trigger_needs_and_skips_the_rest():
    wanted, unwanted = ingest("user.created"), ingest("page.viewed")
    relay = Recorder()

    result = relay.batch()

    assert relay.delivered == [wanted.id]
    assert (result.pushed, result.skipped) == (1, 1)
    assert state(wanted) == "dispatched" and state(unwanted) == "skipped"
    assert relay.batch().claimed == 0


def test_the_relay_pushes_the_payload_the_harness_builds_for_the_same_event():
    event = event_ingest(
        name="user.created", user_id="u7", email="ada@example.com", properties={"plan": "pro"}
    ).event
    pushed = []
    outbox_relay_batch(wanted=lambda name: True, deliver=pushed.extend, cancel=lambda ids: None)

    [item] = pushed
    assert item.payload == event_engine_payload(Event.objects.select_related("contact").get(pk=event.pk))
    assert item.payload["user_email"] == "ada@example.com" and item.payload["properties"] == {"plan": "pro"}


def test_an_event_a_parked_wait_is_waiting_for_is_pushed_for_that_contact_only():
    contact = Contact.objects.create(user_id="waiter")
    now = timezone.now()
    awaited_event_register(
        run_id=contact.pk, contact_id=contact.pk, name="csm.replied", since=now, until=now + timedelta(days=1)
    )
    awaited, elsewhere = ingest("csm.replied", "waiter"), ingest("csm.replied", "someone-else")
    relay = Recorder(wanted=())

    relay.batch()

    assert relay.delivered == [awaited.id]
    assert state(elsewhere) == "skipped"


def test_an_event_skipped_before_its_wait_registered_is_rearmed_and_pushed():
    """The race: the awaited event is relayed (and skipped) before the wait's row exists."""
    contact = Contact.objects.create(user_id="racer")
    wait_began = timezone.now()
    early = ingest("csm.replied", "racer")
    relay = Recorder(wanted=())
    relay.batch()
    assert state(early) == "skipped"

    rearmed = awaited_event_register(
        run_id=contact.pk,
        contact_id=contact.pk,
        name="csm.replied",
        since=wait_began,
        until=wait_began + timedelta(days=1),
    )
    relay.batch()

    assert rearmed == 1
    assert relay.delivered == [early.id]
    assert state(early) == "dispatched"


def test_a_failed_push_leaves_events_pending_and_counts_the_attempt():
    event = ingest("user.created")
    result = Recorder(fail=True).batch()

    assert result.error and result.pushed == 0
    stored = Event.objects.get(pk=event.pk)
    assert stored.dispatch_state == "pending" and stored.dispatch_attempts == 1

    healthy = Recorder()
    healthy.batch()
    assert healthy.delivered == [event.id]


def test_an_unreadable_row_is_quarantined_and_the_rows_behind_it_still_go_out():
    bad, good = ingest("user.created", "far-future"), ingest("user.created", "ordinary")
    with connection.cursor() as cursor:  # beyond Python's datetime range, as a bad client once sent
        cursor.execute(
            "UPDATE contacts_event SET occurred_at = '10000-01-01T00:59:59Z', received_at = now() - interval '1 minute' "
            "WHERE id = %s",
            [bad.pk],
        )
    relay = Recorder()

    result = relay.batch()

    assert result.quarantined == 1
    assert relay.delivered == [good.id]
    assert state(bad) == "quarantined"


def test_two_relays_at_once_never_push_the_same_event():
    events = [ingest("user.created", f"u{i}") for i in range(300)]
    first, second = Recorder(pause=0.05), Recorder(pause=0.05)
    start = threading.Barrier(2)

    def run(relay: Recorder) -> None:
        start.wait()
        try:
            while relay.batch(limit=20).claimed:
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert first.delivered and second.delivered, "both relays should have taken a share"
    assert not set(first.delivered) & set(second.delivered)
    assert sorted(first.delivered + second.delivered) == sorted(e.id for e in events)


def test_a_run_the_push_starts_can_reference_its_event_while_the_relay_holds_the_claim():
    """The engine may start a journey before the relay commits: its enrollment inserts a row that
    references the claimed event, and must not wait for the relay (which waits for the push)."""
    from journeys.models import JourneyRun

    event = ingest("user.created")
    inserted: list = []

    class Pushing(Recorder):
        def deliver(self, items) -> None:
            def enroll() -> None:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SET lock_timeout = '5s'")
                    JourneyRun.objects.create(
                        journey_id="activation-welcome",
                        contact_id=items[0].contact_id,
                        trigger_event_id=items[0].id,
                        status=JourneyRun.Status.ACTIVE,
                        entered_at=timezone.now(),
                    )
                    inserted.append(items[0].id)
                finally:
                    connection.close()

            worker = threading.Thread(target=enroll)
            worker.start()
            worker.join()
            super().deliver(items)

    result = Pushing().batch()

    assert result.pushed == 1 and not result.error
    assert inserted == [event.id]
