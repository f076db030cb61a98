from __future__ import annotations

import hashlib
import json

import pytest

from contacts.models import AuditEntry, Contact, Suppression

pytestmark = pytest.mark.django_db


def test_erase_removes_a_contacts_personal_data_and_stops_its_live_runs(
    admin, runs, engine, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/v1/admin/contacts/ada/erase")
    assert response.status_code == 200
    ada = Contact.objects.get(pk=runs["ada"].pk)
    assert ada.erased_at is not None and ada.email == "" and ada.user_id.startswith("erased-")
    assert sorted(response.json()["exitedRuns"]) == sorted([str(runs["waiting"].pk), str(runs["active"].pk)])
    assert sorted(engine.cancelled) == sorted([runs["waiting"].pk, runs["active"].pk])
    # The audit keeps ids and a hash, nothing that identified the person. (Compared whole: a
    # search for "ada" in it also finds the hex of a random run id now and then.)
    detail = AuditEntry.objects.get(action="contact.erase").detail
    assert {**detail, "exited_runs": sorted(detail["exited_runs"])} == {
        "exited_runs": sorted([str(runs["waiting"].pk), str(runs["active"].pk)]),
        "previous_user_id_hash": hashlib.sha256(b"ada").hexdigest()[:16],
    }
    assert "ada@example.com" not in json.dumps(detail)
    assert admin.post(f"/v1/admin/contacts/{ada.pk}/erase").status_code == 409
    assert admin.post("/v1/admin/contacts/nobody/erase").status_code == 404


def test_suppressions_are_added_listed_by_prefix_in_pages_and_removed(admin):
    assert (
        admin.post("/v1/admin/suppressions", {"email": "Ada@Example.com", "note": "asked"}).status_code == 201
    )
    assert admin.post("/v1/admin/suppressions", {"email": "ada@example.com"}).status_code == 200
    admin.post("/v1/admin/suppressions", {"email": "adam@example.com", "reason": "complaint"})
    admin.post("/v1/admin/suppressions", {"email": "bob@example.com"})

    first = admin.get("/v1/admin/suppressions?email=ada&limit=1").json()
    assert [s["email"] for s in first["items"]] == ["ada@example.com"]
    second = admin.get(f"/v1/admin/suppressions?email=ada&limit=1&cursor={first['nextCursor']}").json()
    assert [(s["email"], s["reason"]) for s in second["items"]] == [("adam@example.com", "complaint")]
    assert second["nextCursor"] is None

    assert admin.delete("/v1/admin/suppressions/ada@example.com").status_code == 204
    assert admin.delete("/v1/admin/suppressions/ada@example.com").status_code == 404
    assert set(Suppression.objects.values_list("email", flat=True)) == {"adam@example.com", "bob@example.com"}
    assert list(AuditEntry.objects.order_by("created_at").values_list("action", flat=True)) == [
        "suppression.add",
        "suppression.add",
        "suppression.add",
        "suppression.remove",
    ]


def test_a_bad_suppression_says_which_field_is_wrong(admin):
    response = admin.post("/v1/admin/suppressions", {"email": "not an address"})
    assert response.status_code == 422 and "not a valid email address" in response.json()["detail"]
    response = admin.post("/v1/admin/suppressions", {"email": "a@example.com", "reason": "whim"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "reason"


@pytest.mark.parametrize(("fmt", "content_type"), [("csv", "text/csv"), ("jsonl", "application/x-ndjson")])
def test_the_export_streams_every_contact_with_its_consent_state(admin, runs, fmt, content_type):
    Contact.objects.filter(user_id="bob").update(category_opt_outs=["tips"])
    response = admin.get(f"/v1/admin/contacts/export?format={fmt}")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith(content_type)
    text = b"".join(response.streaming_content).decode()
    if fmt == "csv":
        assert text.splitlines()[0].startswith("user_id,email,subscribed,unsubscribed_at,category_opt_outs")
        assert "bob,bob@example.com,true,,tips," in text
    else:
        rows = {row["user_id"]: row for row in map(json.loads, text.splitlines())}
        assert rows["bob"]["category_opt_outs"] == ["tips"] and rows["ada"]["subscribed"] is True
    assert admin.get("/v1/admin/contacts/export?format=xml").status_code == 422
