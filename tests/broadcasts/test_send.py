"""A broadcast sends its template once to each contact of its audience, through the same consent,
suppression and idempotency as every send; cancelled, it sends nothing more."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.send import broadcast_drain, recipients_claim
from broadcasts.services import (
    BroadcastError,
    broadcast_cancel,
    broadcast_create,
    broadcast_pause,
    broadcast_resume,
)
from broadcasts.templates import ANNOUNCEMENT
from broadcasts.ticks import broadcasts_tick
from contacts.models import Suppression
from emails.models import EmailLog
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS, recipients_of

pytestmark = pytest.mark.django_db
PRO = [{"property": "plan", "operator": "eq", "value": "pro"}]


def announce(**overrides) -> Broadcast:
    fields = {"name": "Dark mode", "template": ANNOUNCEMENT, "props": ANNOUNCEMENT_PROPS, "conditions": PRO,
              "rate": 0, "start": True}  # fmt: skip
    fields.update(overrides)
    return broadcast_create(**fields)


def outcomes(broadcast: Broadcast) -> dict[str, int]:
    rows = BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("outcome", flat=True)
    counted: dict[str, int] = {}
    for outcome in rows:
        counted[outcome] = counted.get(outcome, 0) + 1
    return counted


def test_a_broadcast_mails_each_contact_the_filter_matches_once(people, smtp_server):
    pro = people(3, properties={"plan": "pro"})
    people(2, properties={"plan": "free"})
    broadcast = announce()
    assert broadcast.status == Broadcast.Status.RUNNING
    assert broadcast.recipients_total == 3

    result = broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    assert result.outcome == "done"
    assert recipients_of(smtp_server) == sorted(c.email for c in pro)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.COMPLETED
    assert outcomes(broadcast) == {"sent": 3}
    keys = set(EmailLog.objects.values_list("idempotency_key", flat=True))
    assert keys == {f"broadcast:{broadcast.pk}:{c.pk}" for c in pro}
    assert smtp_server.messages[0]["Subject"] == "News from Hogsend"
    assert smtp_server.messages[0]["List-Unsubscribe"]


def test_consent_and_suppression_hold_back_their_contacts_with_the_reason(people, smtp_server):
    ok, unsubscribed, opted_out, suppressed, unconfirmed = people(5, properties={"plan": "pro"})
    unsubscribed.unsubscribed_at = timezone.now()
    unsubscribed.save()
    opted_out.category_opt_outs = ["product-updates"]
    opted_out.save()
    Suppression.objects.create(email=suppressed.email, reason="bounce")
    unconfirmed.confirmation_required = True
    unconfirmed.save()
    broadcast = announce()

    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    assert recipients_of(smtp_server) == [ok.email]
    reasons = dict(BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("contact_id", "reason"))
    assert reasons == {
        ok.pk: "",
        unsubscribed.pk: "unsubscribed",
        opted_out.pk: "category_opt_out:product-updates",
        suppressed.pk: "suppressed:bounce",
        unconfirmed.pk: "unconfirmed",
    }
    assert outcomes(broadcast) == {"sent": 1, "suppressed": 4}


def test_a_batch_retried_after_its_worker_died_sends_nothing_twice(people, smtp_server, settings):
    people(4, properties={"plan": "pro"})
    broadcast = announce()
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)
    assert len(smtp_server.envelopes) == 4
    # As if the worker died after sending, before recording: every recipient claimed again.
    BroadcastRecipient.objects.filter(broadcast=broadcast).update(state="pending", outcome="", email=None)
    Broadcast.objects.filter(pk=broadcast.pk).update(status=Broadcast.Status.RUNNING)

    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    assert len(smtp_server.envelopes) == 4
    assert outcomes(broadcast) == {"sent": 4}
    assert EmailLog.objects.count() == 4


def test_claims_of_a_dead_worker_go_back_to_pending_after_the_timeout(people, smtp_server, settings):
    people(3, properties={"plan": "pro"})
    broadcast = announce()
    claimed = recipients_claim(broadcast_id=broadcast.pk, size=2)  # the worker that then died
    assert len(claimed) == 2
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)
    assert len(smtp_server.envelopes) == 1  # the others are still someone's

    settings.BROADCAST_CLAIM_TIMEOUT_SECONDS = 60
    tick = broadcasts_tick(now=timezone.now() + timedelta(seconds=61))
    assert (tick.released, tick.to_drain) == (2, [broadcast.pk])
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    assert len(smtp_server.envelopes) == 3
    assert outcomes(broadcast) == {"sent": 3}


def test_a_cancelled_broadcast_sends_nothing_more(people, smtp_server):
    people(6, properties={"plan": "pro"})
    broadcast = announce()
    first = recipients_claim(broadcast_id=broadcast.pk, size=2)
    from broadcasts.send import batch_send

    batch_send(broadcast=broadcast, claimed=first)
    assert len(smtp_server.envelopes) == 2
    in_flight = recipients_claim(broadcast_id=broadcast.pk, size=2)  # a worker holds these

    broadcast_cancel(broadcast_id=broadcast.pk, actor=None)

    assert batch_send(broadcast=broadcast, claimed=in_flight) is None
    assert broadcast_drain(broadcast_id=broadcast.pk, seconds=5).outcome == "stopped"
    assert len(smtp_server.envelopes) == 2
    assert outcomes(broadcast) == {"sent": 2, "cancelled": 4}
    assert Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.CANCELLED


def test_emails_written_but_not_yet_handed_over_when_cancelled_are_never_sent(
    people, smtp_server, monkeypatch
):
    """The cancel lands between a batch's commit of its email rows and their provider calls."""
    people(3, properties={"plan": "pro"})
    broadcast = announce()
    from broadcasts import send

    real = send.emails_deliver_batch

    def cancel_first(**kwargs):
        if Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.RUNNING:
            broadcast_cancel(broadcast_id=broadcast.pk)
        return real(**kwargs)

    monkeypatch.setattr(send, "emails_deliver_batch", cancel_first)
    broadcast_drain(broadcast_id=broadcast.pk, seconds=5)

    assert smtp_server.envelopes == []
    assert set(EmailLog.objects.values_list("status", "status_reason")) == {
        ("suppressed", "broadcast_cancelled")
    }


def test_pause_stops_between_batches_and_resume_goes_on_where_it_stopped(people, smtp_server):
    people(4, properties={"plan": "pro"})
    broadcast = announce()
    from broadcasts.send import batch_send

    batch_send(broadcast=broadcast, claimed=recipients_claim(broadcast_id=broadcast.pk, size=1))
    broadcast_pause(broadcast_id=broadcast.pk)
    assert broadcast_drain(broadcast_id=broadcast.pk, seconds=5).outcome == "stopped"
    assert len(smtp_server.envelopes) == 1

    broadcast_resume(broadcast_id=broadcast.pk)
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    assert len(smtp_server.envelopes) == 4
    assert Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.COMPLETED


def test_a_broadcast_at_a_moment_starts_on_the_first_tick_after_it(people, smtp_server):
    people(2, properties={"plan": "pro"})
    at = timezone.now() + timedelta(hours=1)
    broadcast = announce(send_at=at)
    assert (broadcast.status, broadcast.recipients_total) == (Broadcast.Status.SCHEDULED, 0)
    assert broadcasts_tick(now=at - timedelta(seconds=1)).started == 0
    people(1, properties={"plan": "pro"})  # joins the audience before the moment

    tick = broadcasts_tick(now=at)

    assert tick.started == 1 and tick.to_drain == [broadcast.pk]
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)
    assert len(smtp_server.envelopes) == 3


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"template": "no/such"}, "template", "unknown email template 'no/such'"),
        ({"props": {}}, "props", "needs props: headline"),
        ({"category": "transactional"}, "category", "at most once"),
        ({"category": "nope"}, "category", "unknown email category 'nope'"),
        ({"conditions": [{"property": "plan", "operator": "like"}]}, "filter", "unknown operator"),
        ({"segment_id": "trial-pro", "conditions": None}, "segment", "unknown segment 'trial-pro'"),
        ({"rate": -1}, "rate", "sends per second"),
        ({"template": "", "journey_id": "no-such-journey"}, "journey", "unknown journey 'no-such-journey'"),
    ],
)
def test_what_a_broadcast_names_must_exist(fields, field, message):
    with pytest.raises(BroadcastError, match=message) as caught:
        announce(**fields)
    assert caught.value.field == field
    assert not Broadcast.objects.exists()
