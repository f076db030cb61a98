"""A broadcast's `priority` and `on_cap` reach every send: under a frequency cap a broadcast's
send is skipped (`frequency_capped`) with "skip" or held for the next free slot with "defer", and
its progress counts them so."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.selectors import broadcast_progress
from broadcasts.send import broadcast_drain
from broadcasts.services import BroadcastError, broadcast_create
from broadcasts.templates import ANNOUNCEMENT
from emails.models import EmailLog
from emails.services import email_send
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS, recipients_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_a_day(settings):
    # pytest-django's `settings` goes through override_settings, which re-reads the send policy.
    settings.HOGSEND_FREQUENCY_CAPS = {"product-updates": [(1, "24h")]}


def announce(**overrides) -> Broadcast:
    fields = {"name": "Dark mode", "template": ANNOUNCEMENT, "props": ANNOUNCEMENT_PROPS, "rate": 0}
    return broadcast_create(**{**fields, **overrides})


def mailed_today(contact) -> None:
    """The contact already had its one product update of the day."""
    email_send(to=contact.email, template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS, user_id=contact.user_id,
               idempotency_key=f"earlier:{contact.pk}")  # fmt: skip


@pytest.mark.usefixtures("one_a_day")
def test_a_capped_send_is_skipped_with_skip(people, smtp_server):
    fresh, capped = people(2)
    mailed_today(capped)

    broadcast = announce(on_cap="skip", priority=5)
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    assert recipients_of(smtp_server) == sorted([capped.email, fresh.email])  # the earlier one, and fresh's
    outcome = BroadcastRecipient.objects.get(broadcast=broadcast, contact=capped)
    assert (outcome.outcome, outcome.reason) == ("skipped", "frequency_capped")
    progress = broadcast_progress(broadcast=broadcast)
    assert (progress.sent, progress.held, progress.skipped) == (1, 0, {"frequency_capped": 1})
    sent = EmailLog.objects.get(idempotency_key=f"broadcast:{broadcast.pk}:{fresh.pk}")
    assert (sent.priority, sent.on_cap) == (5, "skip")


@pytest.mark.usefixtures("one_a_day")
def test_a_capped_send_is_held_for_the_next_free_slot_with_defer(people, smtp_server):
    _fresh, capped = people(2)
    mailed_today(capped)

    broadcast = announce(on_cap="defer")
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    held = EmailLog.objects.get(idempotency_key=f"broadcast:{broadcast.pk}:{capped.pk}")
    assert held.status == EmailLog.Status.HELD
    earlier = EmailLog.objects.get(idempotency_key=f"earlier:{capped.pk}")
    assert held.held_until >= earlier.created_at + timedelta(hours=24)
    assert held.on_cap == "defer"
    progress = broadcast_progress(broadcast=broadcast)
    assert (progress.sent, progress.held, progress.skipped) == (1, 1, {})


def test_priority_and_on_cap_are_checked_and_shown(admin, people):
    with pytest.raises(BroadcastError) as raised:
        announce(on_cap="later")
    assert raised.value.field == "onCap"
    with pytest.raises(BroadcastError) as raised:
        announce(priority=101)
    assert raised.value.field == "priority"

    body = {"name": "Dark mode", "template": ANNOUNCEMENT, "props": ANNOUNCEMENT_PROPS, "rate": 0,
            "sendAt": "2099-01-01T00:00:00Z"}  # fmt: skip
    created = admin.post("/v1/admin/broadcasts", {**body, "priority": 7, "onCap": "defer"})
    assert created.status_code == 201, created.content
    assert (created.json()["priority"], created.json()["onCap"]) == (7, "defer")
    for change, field in [({"onCap": "later"}, "onCap"), ({"priority": 1000}, "priority")]:
        response = admin.post("/v1/admin/broadcasts", {**body, **change})
        assert response.status_code == 422
        assert field in response.json()["detail"]

    call_command("broadcast_send", "From the shell", "--template", ANNOUNCEMENT, "--props",
                 '{"headline": "h", "body": "b", "cta_url": "https://example.com/x"}', "--at",
                 "2099-01-01T00:00:00+00:00", "--priority", "3", "--on-cap", "defer", stdout=io.StringIO())  # fmt: skip
    made = Broadcast.objects.get(name="From the shell")
    assert (made.priority, made.on_cap) == (3, "defer")


def test_a_higher_priority_broadcast_takes_the_slot_of_a_lower_held_send(people, smtp_server, settings):
    # Both wait for the end of quiet hours (13:00 UTC), where one send a day fits: the broadcast's
    # higher priority takes that slot and the other send moves to the next free one.
    settings.HOGSEND_FREQUENCY_CAPS = {"product-updates": [(1, "24h")]}
    settings.HOGSEND_QUIET_HOURS = {"product-updates": ("11:00", "13:00")}
    (contact,) = people(1)
    with time_machine.travel(datetime(2026, 12, 10, 12, 0, tzinfo=UTC), tick=True):
        waiting = email_send(to=contact.email, template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS,
                             user_id=contact.user_id, idempotency_key="waiting", on_cap="defer")  # fmt: skip
        assert (waiting.status, waiting.held_until) == (
            EmailLog.Status.HELD,
            datetime(2026, 12, 10, 13, 0, tzinfo=UTC),
        )

        broadcast = announce(on_cap="defer", priority=5)
        broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    taken = EmailLog.objects.get(idempotency_key=f"broadcast:{broadcast.pk}:{contact.pk}")
    waiting.refresh_from_db()
    assert (taken.status, taken.held_until) == (
        EmailLog.Status.HELD,
        datetime(2026, 12, 10, 13, 0, tzinfo=UTC),
    )
    assert waiting.held_until == datetime(2026, 12, 11, 13, 0, tzinfo=UTC)
