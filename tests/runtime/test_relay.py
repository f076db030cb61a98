"""The relay loop: woken by ingest's NOTIFY, not by its poll."""

from __future__ import annotations

import threading

import pytest

from contacts.ingest import event_ingest
from journeys.runtime.relay import OutboxRelay, RelayThread

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingRelay(OutboxRelay):
    def __init__(self) -> None:
        super().__init__()
        self.delivered = threading.Event()
        self.ids: list = []

    def wanted(self, name: str) -> bool:
        return True

    def deliver(self, items) -> None:
        self.ids += [i.id for i in items]
        self.delivered.set()

    def cancel(self, run_ids) -> None:
        pass


def test_a_stored_event_wakes_the_relay_long_before_its_poll_would():
    thread = RelayThread(poll=600)  # only a NOTIFY can wake it within the test
    thread.relay = RecordingRelay()
    thread.start()
    try:
        threading.Event().wait(1.0)  # let it LISTEN and find the outbox empty
        event = event_ingest(name="user.created", user_id="ada").event

        assert thread.relay.delivered.wait(30), "the relay was not woken by the ingest's NOTIFY"
        assert thread.relay.ids == [event.id]
    finally:
        thread.stop()
        thread.join(timeout=5)
