"""Lifecycle events come out of the places the transitions happen: ingest, consent, the send
pipeline, provider webhooks and journey runs. Each is a delivery row for every destination that
asked for it; nothing is sent inline."""

from __future__ import annotations

import jsonschema_rs
import pytest

from contacts.ingest import event_ingest
from contacts.models import Contact
from contacts.services import contact_resubscribe, contact_unsubscribe, contact_upsert
from contacts.suppressions import suppression_create
from emails.models import EmailLog
from emails.services import email_send
from emails.status import email_status_advance
from integrations.catalog import CATALOG, ENVELOPE_SCHEMA
from integrations.models import Delivery, Destination
from journeys.durations import days

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def every_payload_matches_its_catalog_schema():
    """After each test: every queued payload is valid against the envelope and its type's schema."""
    yield
    for delivery in Delivery.objects.all():
        jsonschema_rs.validate(ENVELOPE_SCHEMA, delivery.payload)
        jsonschema_rs.validate(CATALOG[delivery.event_type].schema, delivery.payload["data"])


@pytest.fixture
def everything():
    """A destination that takes every type (nothing listens on its port: rows are what we check)."""
    return Destination.objects.create(name="all", kind="slack", url="http://127.0.0.1:9/x")


def emitted(**filters) -> list[tuple[str, dict]]:
    return [
        (d.event_type, d.payload["data"])
        for d in Delivery.objects.filter(**filters).order_by("created_at", "event_type")
    ]


def types() -> list[str]:
    return [t for t, _ in emitted()]


def test_a_first_event_for_a_user_creates_the_contact_and_a_change_updates_it(everything):
    event_ingest(name="signed_up", user_id="u1", email="ada@example.com")
    event_ingest(name="clicked", user_id="u1")
    event_ingest(name="renamed", user_id="u1", contact_properties={"plan": "pro"})

    assert types() == ["contact.created", "contact.updated"]
    created, updated = emitted()
    assert (created[1]["userId"], created[1]["email"]) == ("u1", "ada@example.com")
    assert updated[1]["properties"] == {"plan": "pro"}
    assert all(d.status == Delivery.Status.PENDING and d.attempts == 0 for d in Delivery.objects.all())


def test_a_batch_emits_one_created_per_new_contact():
    from contacts.ingest import EventDraft, events_ingest

    Destination.objects.create(
        name="c", kind="slack", url="http://127.0.0.1:9/", event_types=["contact.created"]
    )
    events_ingest(drafts=[EventDraft(name="e", user_id=f"b{i}") for i in range(3)] * 2)

    assert sorted(d["userId"] for _, d in emitted()) == ["b0", "b1", "b2"]


def test_the_contacts_api_upsert_emits_created_then_updated(everything):
    contact_upsert(user_id="u2", email="b@example.com")
    contact_upsert(user_id="u2", email="b@example.com")
    contact_upsert(user_id="u2", properties={"seats": 3})

    assert types() == ["contact.created", "contact.updated"]


def test_unsubscribe_and_resubscribe_are_emitted_once_each(everything):
    contact, _ = contact_upsert(user_id="u3", email="c@example.com")
    Delivery.objects.all().delete()

    contact_unsubscribe(contact=contact)
    contact_unsubscribe(contact=contact)
    contact_resubscribe(contact=Contact.objects.get(pk=contact.pk))

    assert types() == ["contact.unsubscribed", "contact.resubscribed"]
    assert emitted()[0][1]["subscribed"] is False


def test_a_double_opt_in_confirmation_is_emitted_once(everything):
    from contacts.confirmation import confirmation_request
    from contacts.consent import ConsentVia
    from contacts.services import contact_confirm

    contact, _ = contact_upsert(user_id="u4", email="d@example.com")
    request = confirmation_request(contact=contact, via=ConsentVia(source="api"))
    Delivery.objects.all().delete()

    contact_confirm(request=request, via=ConsentVia(source="confirmation_link"))
    contact_confirm(request=request, via=ConsentVia(source="confirmation_link"))

    assert types() == ["contact.confirmed"]


def test_a_new_suppression_is_emitted_with_its_reason(everything):
    suppression_create(email="Bounced@Example.com", reason="bounce", note="3 permanent bounces")
    suppression_create(email="bounced@example.com", reason="bounce")

    assert emitted() == [
        (
            "contact.suppressed",
            {"email": "bounced@example.com", "reason": "bounce", "note": "3 permanent bounces"},
        )
    ]


def test_an_email_emits_queued_sent_and_each_provider_outcome(everything):
    contact, _ = contact_upsert(user_id="u4", email="d@example.com")
    log = email_send(to=contact.email, user_id="u4", template="activation/welcome", idempotency_key="k-1")
    email_status_advance(email_id=log.pk, to=EmailLog.Status.DELIVERED)
    email_status_advance(email_id=log.pk, to=EmailLog.Status.BOUNCED, reason="mailbox full")
    email_status_advance(email_id=log.pk, to=EmailLog.Status.DELIVERED)  # late: no move, no event

    email_types = [t for t in types() if t.startswith("email.")]
    assert email_types == ["email.queued", "email.sent", "email.delivered", "email.bounced"]
    bounced = emitted(event_type="email.bounced")[0][1]
    assert (bounced["to"], bounced["template"], bounced["reason"], bounced["userId"]) == (
        "d@example.com",
        "activation/welcome",
        "mailbox full",
        "u4",
    )


def test_an_email_to_an_unsubscribed_contact_emits_suppressed(everything):
    contact, _ = contact_upsert(user_id="u5", email="e@example.com")
    contact_unsubscribe(contact=contact)
    email_send(to=contact.email, user_id="u5", template="activation/welcome", idempotency_key="k-2")

    assert emitted(event_type="email.suppressed")[0][1]["reason"] == "unsubscribed"


def test_a_journey_run_emits_entered_and_its_exit(journey_harness):
    Destination.objects.create(name="j", kind="slack", url="http://127.0.0.1:9/", event_types=["journey.*"])

    run = journey_harness.start("activation-welcome", user_id="u6", email="f@example.com")
    journey_harness.emit("user.deleted", user_id="u6")
    journey_harness.advance(days(3))

    assert types() == ["journey.entered", "journey.exited"]
    exited = emitted(event_type="journey.exited")[0][1]
    assert (exited["runId"], exited["journeyId"], exited["userId"]) == (
        str(run.pk),
        "activation-welcome",
        "u6",
    )
    assert exited["reason"] == "exit_on:user.deleted"


def test_a_journey_that_runs_to_the_end_emits_completed(journey_harness):
    Destination.objects.create(
        name="j", kind="slack", url="http://127.0.0.1:9/", event_types=["journey.completed"]
    )

    journey_harness.start("activation-welcome", user_id="u7", email="g@example.com")
    journey_harness.advance(days(3))

    assert [d["journeyId"] for _, d in emitted()] == ["activation-welcome"]


def test_a_payload_that_breaks_its_schema_is_caught_by_the_check():
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validate(
            CATALOG["email.bounced"].schema, {"emailId": "x", "to": "a@b", "template": "t"}
        )


def test_a_failed_run_emits_failed_with_the_first_line_of_its_error():
    from journeys.models import JourneyRun
    from journeys.services import run_fail

    Destination.objects.create(
        name="j", kind="slack", url="http://127.0.0.1:9/", event_types=["journey.failed"]
    )
    contact, _ = contact_upsert(user_id="u8")
    run = JourneyRun.objects.create(journey_id="churn", contact=contact, entered_at=contact.created_at)

    run_fail(run_id=run.pk, error="TemplateDoesNotExist: churn/offer\nTraceback ...")
    run_fail(run_id=run.pk, error="again")  # already failed: no second event

    assert emitted() == [
        (
            "journey.failed",
            {
                "runId": str(run.pk),
                "journeyId": "churn",
                "contactId": str(contact.pk),
                "userId": "u8",
                "status": "failed",
                "enteredAt": contact.created_at.isoformat(),
                "endedAt": JourneyRun.objects.get(pk=run.pk).ended_at.isoformat(),
                "reason": "TemplateDoesNotExist: churn/offer",
            },
        )
    ]


def test_a_run_that_ends_is_announced_once_where_it_ends_to_destinations_and_as_an_event(everything):
    """The transition itself announces: one delivery and, for completed or failed, one system
    event, written in the transaction that ended the run; a second end of the same run neither."""
    from contacts.models import Event
    from journeys.models import JourneyRun
    from journeys.services import run_complete, run_exit, run_fail

    contact, _ = contact_upsert(user_id="u11")
    failing, completing, exiting = (
        JourneyRun.objects.create(journey_id=j, contact=contact, entered_at=contact.created_at)
        for j in ("churn", "welcome", "trial")
    )
    Delivery.objects.all().delete()

    run_fail(run_id=failing.pk, error="KeyError: 'plan'\nTraceback ...")
    run_fail(run_id=failing.pk, error="again")
    run_complete(run_id=completing.pk)
    run_complete(run_id=completing.pk)
    run_exit(run_id=exiting.pk, reason="exit_on:paid")

    assert sorted(types()) == ["journey.completed", "journey.exited", "journey.failed"]
    events = {e.name: e.properties for e in Event.objects.filter(source="system")}
    assert events == {
        "journey.failed": {"journey_id": "churn", "run_id": str(failing.pk), "error": "KeyError: 'plan'"},
        "journey.completed": {"journey_id": "welcome", "run_id": str(completing.pk)},
    }


def test_erasing_a_contact_drops_its_deliveries_so_nothing_of_it_leaves(everything):
    from contacts.services import contact_erase

    contact, _ = contact_upsert(user_id="u9", email="h@example.com")
    suppression_create(email="h@example.com", reason="manual")
    contact_upsert(user_id="u10", email="i@example.com")

    contact_erase(contact=contact)

    assert [d["userId"] for _, d in emitted()] == ["u10"]


def test_with_no_destination_the_hot_paths_skip_the_destinations_query(django_assert_num_queries):
    from integrations.lifecycle import lifecycle_emit_many

    lifecycle_emit_many(
        events=[("operator.alert", {"title": "t", "text": "x"})]
    )  # looks once, remembers nobody listens
    with django_assert_num_queries(0):
        lifecycle_emit_many(events=[("operator.alert", {"title": "t", "text": "x"})])
    Destination.objects.create(name="new", kind="slack", url="http://127.0.0.1:9/")
    assert len(lifecycle_emit_many(events=[("operator.alert", {"title": "t", "text": "x"})])) == 1
