"""Every path that changes consent writes its consent-ledger row, in the same transaction."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from contacts.consent import ConsentVia, consent_record
from contacts.imports import contacts_import
from contacts.models import ConsentChange, Contact, Suppression
from contacts.preferences import preference_center_url, unsubscribe_url
from contacts.services import api_key_create, contact_unsubscribe
from contacts.suppressions import suppression_create, suppression_remove

pytestmark = pytest.mark.django_db
Kind, Source = ConsentChange.Kind, ConsentChange.Source
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131"


@pytest.fixture
def ada(db) -> Contact:
    return Contact.objects.create(user_id="ada", email="Ada@Example.com")


def rows(contact: Contact) -> list[tuple[str, str, str]]:
    return list(
        ConsentChange.objects.filter(contact=contact).order_by("id").values_list("kind", "source", "category")
    )


def path(url: str) -> str:
    return urlsplit(url).path


def test_the_preference_center_records_each_change_with_ip_user_agent_and_the_link(client, ada):
    url = preference_center_url(contact=ada)
    token = path(url).rstrip("/").rsplit("/", 1)[1]
    headers = {"User-Agent": BROWSER}
    client.post(path(url), {"action": "save", "categories": ["journey", "tips"]}, headers=headers)
    client.post(path(url), {"action": "unsubscribe_all"}, headers=headers)
    client.post(path(url), {"action": "resubscribe"}, headers=headers)

    assert rows(ada) == [
        (Kind.CATEGORY_OPTED_OUT, Source.PREFERENCE_CENTER, "product-updates"),
        (Kind.CATEGORY_OPTED_IN, Source.PREFERENCE_CENTER, "tips"),
        (Kind.UNSUBSCRIBED, Source.PREFERENCE_CENTER, ""),
        (Kind.RESUBSCRIBED, Source.PREFERENCE_CENTER, ""),
    ]
    row = ada.consent_changes.latest("id")
    assert row.ip_address == "127.0.0.1" and row.user_agent == BROWSER
    assert row.email == "ada@example.com"
    import hashlib

    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()


def test_saving_the_same_choices_again_records_nothing(client, ada):
    url = path(preference_center_url(contact=ada))
    client.post(url, {"action": "save", "categories": ["journey", "tips"]})
    before = ada.consent_changes.count()
    client.post(url, {"action": "save", "categories": ["journey", "tips"]})
    client.post(url, {"action": "resubscribe"})  # already subscribed
    assert ada.consent_changes.count() == before


def test_one_click_and_the_unsubscribe_page_are_told_apart(ada):
    bob = Contact.objects.create(user_id="bob", email="bob@example.com")
    mail_client = Client(enforce_csrf_checks=True)
    mail_client.post(
        path(unsubscribe_url(contact=ada)),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    Client().post(path(unsubscribe_url(contact=bob)), {})
    assert rows(ada) == [(Kind.UNSUBSCRIBED, Source.ONE_CLICK, "")]
    assert rows(bob) == [(Kind.UNSUBSCRIBED, Source.UNSUBSCRIBE_PAGE, "")]


def test_a_get_of_a_consent_link_writes_no_ledger_row(client, ada):
    client.get(path(unsubscribe_url(contact=ada)))
    client.head(path(unsubscribe_url(contact=ada)))
    client.get(path(preference_center_url(contact=ada)))
    assert not ConsentChange.objects.exists()


def test_studio_actions_record_the_operator(admin_client, admin_user, ada):
    def act(action, **data):
        admin_client.post(reverse("admin:contacts_contact_studio_action", args=[ada.pk, action]), data)

    act("unsubscribe")
    act("resubscribe")
    act("suppress", note="asked by phone")
    act("unsuppress")
    assert rows(ada) == [
        (Kind.UNSUBSCRIBED, Source.STUDIO, ""),
        (Kind.RESUBSCRIBED, Source.STUDIO, ""),
        (Kind.SUPPRESSED, Source.STUDIO, ""),
        (Kind.UNSUPPRESSED, Source.STUDIO, ""),
    ]
    assert set(ada.consent_changes.values_list("actor", flat=True)) == {admin_user.get_username()}
    assert ada.consent_changes.get(kind=Kind.SUPPRESSED).detail["note"] == "asked by phone"


def test_the_suppression_pages_record_adds_reason_changes_and_removals(admin_client, ada):
    admin_client.post(
        reverse("admin:contacts_suppression_add"),
        {"email": "ada@example.com", "reason": "manual", "note": ""},
    )
    suppression = Suppression.objects.get()
    admin_client.post(
        reverse("admin:contacts_suppression_change", args=[suppression.pk]),
        {"email": "ada@example.com", "reason": "complaint", "note": "forwarded by the ISP"},
    )
    admin_client.post(reverse("admin:contacts_suppression_delete", args=[suppression.pk]), {"post": "yes"})
    assert rows(ada) == [
        (Kind.SUPPRESSED, Source.STUDIO, ""),
        (Kind.SUPPRESSED, Source.STUDIO, ""),
        (Kind.UNSUPPRESSED, Source.STUDIO, ""),
    ]
    assert ada.consent_changes.order_by("id")[1].detail == {
        "reason": "complaint",
        "previous_reason": "manual",
    }


def test_the_admin_api_records_suppressions_as_its_key(client, ada):
    _, secret = api_key_create(name="ops", scopes=["admin"])
    headers = {"Authorization": f"Bearer {secret}"}
    body = json.dumps({"email": "ada@example.com", "note": "legal hold"})
    client.post("/v1/admin/suppressions", body, content_type="application/json", headers=headers)
    client.delete("/v1/admin/suppressions/ada@example.com", headers=headers)
    assert rows(ada) == [(Kind.SUPPRESSED, Source.ADMIN_API, ""), (Kind.UNSUPPRESSED, Source.ADMIN_API, "")]
    assert ada.consent_changes.first().actor.startswith("api key ops (hsk_")


def test_a_suppression_of_an_address_no_contact_has_yet_is_kept_for_it(client):
    with transaction.atomic():
        suppression_create(email="later@example.com", reason=Suppression.Reason.BOUNCE)
    row = ConsentChange.objects.get()
    assert (row.contact, row.email, row.kind, row.source) == (
        None,
        "later@example.com",
        "suppressed",
        "bounce",
    )
    later = Contact.objects.create(user_id="later", email="later@example.com")
    from contacts.consent import consent_history

    assert consent_history(contact=later) == [row]


def test_a_complaint_outranking_a_bounce_is_recorded_and_a_repeat_is_not(ada):
    suppression_create(email="ada@example.com", reason=Suppression.Reason.BOUNCE)
    suppression_create(email="ada@example.com", reason=Suppression.Reason.BOUNCE)
    suppression_create(email="ada@example.com", reason=Suppression.Reason.COMPLAINT)
    suppression_remove(email="ada@example.com")
    assert rows(ada) == [
        (Kind.SUPPRESSED, Source.BOUNCE, ""),
        (Kind.SUPPRESSED, Source.COMPLAINT, ""),
        (Kind.UNSUPPRESSED, Source.SYSTEM, ""),
    ]


def test_an_import_records_the_consent_it_sets_and_a_rerun_records_nothing(tmp_path, ada):
    file = tmp_path / "people.csv"
    file.write_text(
        "user_id,email,subscribed,category_opt_outs\n"
        "ada,ada@example.com,false,\n"  # an existing contact, now unsubscribed
        "new,new@example.com,true,product-updates\n"  # a new contact, consent as the file says
        "same,,true,\n"
    )
    Contact.objects.create(user_id="same", email="same@example.com")
    contacts_import(path=file)
    contacts_import(path=file)

    new = Contact.objects.get(user_id="new")
    assert rows(ada) == [(Kind.IMPORTED, Source.IMPORT, "")]
    assert rows(new) == [(Kind.IMPORTED, Source.IMPORT, "")]
    assert not Contact.objects.get(user_id="same").consent_changes.exists()
    assert ada.consent_changes.get().detail == {
        "file": "people.csv",
        "subscribed": False,
        "category_opt_outs": [],
        "category_opt_ins": [],
    }
    assert new.consent_changes.get().detail["category_opt_outs"] == ["product-updates"]


def test_erasure_scrubs_the_ledger_but_keeps_when_and_how(admin_client, ada):
    contact_unsubscribe(
        contact=ada, via=ConsentVia(source=Source.ONE_CLICK, ip="203.0.113.9", user_agent=BROWSER)
    )
    admin_client.post(
        reverse("admin:contacts_contact_studio_action", args=[ada.pk, "erase"]), {"confirm": "ERASE"}
    )
    assert rows(ada) == [(Kind.UNSUBSCRIBED, Source.ONE_CLICK, ""), (Kind.ERASED, Source.STUDIO, "")]
    first = ada.consent_changes.order_by("id").first()
    assert (first.email, first.ip_address, first.user_agent) == ("", None, "")


def test_a_change_rolled_back_takes_its_ledger_row_with_it(ada):
    with pytest.raises(RuntimeError), transaction.atomic():
        contact_unsubscribe(contact=ada)
        raise RuntimeError("the caller's transaction fails after the change")
    ada.refresh_from_db()
    assert ada.unsubscribed_at is None and not ConsentChange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_ledger_row_cannot_be_written_outside_a_transaction():
    ada = Contact.objects.create(user_id="ada", email="ada@example.com")
    with pytest.raises(RuntimeError, match="in the transaction"):
        consent_record(contact=ada, kind=Kind.UNSUBSCRIBED, via=ConsentVia(source=Source.SYSTEM))


def test_the_contacts_data_export_carries_its_ledger(client, admin_client, ada):
    contact_unsubscribe(
        contact=ada, via=ConsentVia(source=Source.ONE_CLICK, ip="203.0.113.9", user_agent=BROWSER)
    )
    _, secret = api_key_create(name="ops", scopes=["admin"])
    data = client.get("/v1/admin/contacts/ada/export", headers={"Authorization": f"Bearer {secret}"}).json()
    assert data["contact"]["userId"] == "ada" and data["contact"]["subscribed"] is False
    [entry] = data["consentLedger"]
    assert (entry["kind"], entry["source"], entry["ip"], entry["userAgent"]) == (
        "unsubscribed",
        "one_click",
        "203.0.113.9",
        BROWSER,
    )
    studio = admin_client.get(reverse("admin:contacts_contact_data_export", args=[ada.pk]))
    assert studio["Content-Disposition"] == f'attachment; filename="contact-{ada.pk}.json"'
    assert json.loads(studio.content)["consentLedger"] == data["consentLedger"]
    page = admin_client.get(reverse("admin:contacts_contact_change", args=[ada.pk])).content.decode()
    assert "One-click unsubscribe (RFC 8058)" in page and "203.0.113.9" in page


def test_an_unknown_contact_has_no_export(client):
    _, secret = api_key_create(name="ops", scopes=["admin"])
    response = client.get("/v1/admin/contacts/nobody/export", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 404 and "nobody" in response.json()["detail"]
