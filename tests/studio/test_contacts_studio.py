from __future__ import annotations

import json

import pytest
from django.urls import reverse

from contacts.models import AuditEntry, Contact, Event, Suppression
from emails.models import EmailLog
from journeys.dispatch import install_dispatcher
from journeys.models import JourneyRun
from tests.studio.conftest import messages_of

pytestmark = pytest.mark.django_db
CONTACTS = reverse("admin:contacts_contact_changelist")


def act(client, contact, action, data=None):
    return client.post(
        reverse("admin:contacts_contact_studio_action", args=[contact.pk, action]), data or {}, follow=True
    )


def test_search_by_exact_user_id_or_email_prefix(admin_client, studio_data):
    def found(q):
        return {c.user_id for c in admin_client.get(CONTACTS, {"q": q}).context["cl"].result_list}

    assert found("ada") == {"ada"}
    assert found("bo") == {"bob"} and found("ob") == set()  # prefixes only, never a substring
    assert found("bob@ex") == {"bob"}
    assert found("BOB@EX") == {"bob"}
    assert found("example.com") == set()  # a prefix, not a contains scan


def test_the_contacts_list_does_not_grow_queries_with_rows(
    admin_client, studio_data, django_assert_max_num_queries
):
    Contact.objects.bulk_create([Contact(user_id=f"bulk{i}", email=f"b{i}@example.com") for i in range(40)])
    # session, user, table estimate, (small-table) count, the page: the same for 3 rows or 3 million.
    with django_assert_max_num_queries(5):
        admin_client.get(CONTACTS)


def test_a_contacts_page_shows_properties_events_runs_emails_and_consent(
    admin_client, studio_data, django_assert_max_num_queries
):
    ada = studio_data["ada"]
    Suppression.objects.create(email="ada@example.com", reason="bounce")
    with django_assert_max_num_queries(8):  # one of them reads the consent ledger
        response = admin_client.get(reverse("admin:contacts_contact_change", args=[ada.pk]))
    html = response.content.decode()
    assert "&quot;first_name&quot;: &quot;Ada&quot;" in html
    assert "user.created" in html  # the event timeline
    assert reverse("admin:journeys_journeyrun_change", args=[studio_data["sleeping"].pk]) in html
    assert "activation/welcome" in html  # the email
    assert 'studio-pill off">bounce' in html  # consent: the suppression


def test_unsubscribe_and_resubscribe_are_audited(admin_client, admin_user, studio_data):
    ada = studio_data["ada"]
    act(admin_client, ada, "unsubscribe")
    ada.refresh_from_db()
    assert ada.unsubscribed_at is not None
    act(admin_client, ada, "resubscribe")
    ada.refresh_from_db()
    assert ada.unsubscribed_at is None
    assert list(AuditEntry.objects.order_by("created_at").values_list("action", "actor", "target_id")) == [
        ("contact.unsubscribe", admin_user.pk, str(ada.pk)),
        ("contact.resubscribe", admin_user.pk, str(ada.pk)),
    ]


def test_suppress_and_unsuppress_write_a_manual_suppression(admin_client, studio_data):
    ada = studio_data["ada"]
    act(admin_client, ada, "suppress", {"note": "asked by phone"})
    suppression = Suppression.objects.get(email="ada@example.com")
    assert (suppression.reason, suppression.note) == ("manual", "asked by phone")
    act(admin_client, ada, "unsuppress")
    assert not Suppression.objects.exists()
    assert AuditEntry.objects.filter(action__in=["contact.suppress", "contact.unsuppress"]).count() == 2


def test_actions_refuse_a_get(admin_client, studio_data):
    url = reverse("admin:contacts_contact_studio_action", args=[studio_data["ada"].pk, "unsubscribe"])
    assert admin_client.get(url).status_code == 405


def test_enroll_emits_the_journeys_trigger_event_with_the_form_properties(admin_client, studio_data):
    pushed = []

    class Recorder:
        def after_ingest(self, *, event_ids, exited_run_ids):
            pushed.extend(event_ids)

    previous = install_dispatcher(Recorder())
    try:
        response = act(
            admin_client,
            studio_data["ada"],
            "enroll",
            {"journey_id": "conversion-abandoned-checkout", "properties": '{"cart": 42}'},
        )
    finally:
        install_dispatcher(previous)
    event = Event.objects.get(pk=pushed[0])
    assert (event.name, event.properties, event.source, event.contact_id) == (
        "checkout.abandoned",
        {"cart": 42},
        "system",
        studio_data["ada"].pk,
    )
    assert (
        AuditEntry.objects.get(action="contact.enroll").detail["journey_id"]
        == "conversion-abandoned-checkout"
    )
    assert any("Emitted checkout.abandoned" in m for m in messages_of(response))


def test_enroll_with_bad_properties_says_why_and_stores_nothing(admin_client, studio_data):
    before = Event.objects.count()
    response = act(
        admin_client,
        studio_data["ada"],
        "enroll",
        {"journey_id": "activation-welcome", "properties": "[1, 2]"},
    )
    assert Event.objects.count() == before
    assert any("must be a JSON object" in m for m in messages_of(response))


def test_erase_removes_personal_data_but_keeps_the_rows(admin_client, studio_data, fake_engine):
    ada = studio_data["ada"]
    events, emails, runs = (
        ada.events.count(),
        EmailLog.objects.filter(contact=ada).count(),
        ada.journey_runs.count(),
    )
    act(admin_client, ada, "erase", {"confirm": "nope"})
    ada.refresh_from_db()
    assert ada.erased_at is None

    act(admin_client, ada, "erase", {"confirm": "ERASE"})
    ada.refresh_from_db()
    assert ada.erased_at is not None and ada.email == "" and ada.properties == {}
    assert ada.user_id.startswith("erased-")
    assert ada.events.count() == events and not ada.events.exclude(properties={}).exists()
    logs = EmailLog.objects.filter(contact=ada)
    assert logs.count() == emails and set(logs.values_list("to_email", flat=True)) == {""}
    assert not logs.exclude(props={}).exists()
    assert ada.journey_runs.count() == runs
    sleeping = JourneyRun.objects.get(pk=studio_data["sleeping"].pk)
    assert (sleeping.status, sleeping.exit_reason) == ("exited", "contact_erased")
    assert fake_engine.cancelled == [sleeping.pk]
    # The audit keeps ids and a hash, never what was erased. Compare whole values: the exited
    # runs' UUIDs are random hex and may contain the letters of a user id.
    detail = json.dumps(AuditEntry.objects.get(action="contact.erase").detail)
    for erased in ('"ada"', "ada@example.com", "Ada", '"pro"'):
        assert erased not in detail


def test_adding_and_removing_a_suppression_in_its_admin_is_audited(admin_client):
    admin_client.post(
        reverse("admin:contacts_suppression_add"),
        {"email": "x@example.com", "reason": "manual", "note": "by hand"},
    )
    suppression = Suppression.objects.get(email="x@example.com")
    admin_client.post(reverse("admin:contacts_suppression_delete", args=[suppression.pk]), {"post": "yes"})
    assert not Suppression.objects.exists()
    assert list(AuditEntry.objects.order_by("created_at").values_list("action", flat=True)) == [
        "suppression.add",
        "suppression.remove",
    ]
