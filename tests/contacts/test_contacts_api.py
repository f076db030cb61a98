from __future__ import annotations

import pytest

from contacts.models import Contact
from journeys.durations import days

pytestmark = pytest.mark.django_db


def test_put_creates_then_merges_a_contact(api):
    created = api.put(
        "/v1/contacts", {"userId": "u1", "email": "a@example.com", "properties": {"plan": "pro"}}
    )
    assert created.status_code == 201

    updated = api.put("/v1/contacts", {"userId": "u1", "properties": {"seats": 5}})
    assert updated.status_code == 200
    assert updated.json()["properties"] == {"plan": "pro", "seats": 5}
    assert updated.json()["email"] == "a@example.com"
    assert Contact.objects.count() == 1


def test_put_rejects_a_bad_email_naming_the_field(api):
    response = api.put("/v1/contacts", {"userId": "u1", "email": "nope"})
    assert response.status_code == 422
    assert "email" in response.json()["detail"]
    assert not Contact.objects.exists()


def test_a_contact_is_found_by_our_id_or_by_your_user_id(api):
    contact_id = api.put("/v1/contacts", {"userId": "u1"}).json()["id"]

    assert api.get(f"/v1/contacts/{contact_id}").json()["userId"] == "u1"
    assert api.get("/v1/contacts/u1").json()["id"] == contact_id


def test_an_unknown_contact_is_a_404_that_says_which(api):
    response = api.get("/v1/contacts/ghost")
    assert response.status_code == 404
    assert "ghost" in response.json()["detail"]


def test_reading_needs_the_read_scope(client, db):
    from contacts.services import api_key_create

    _, secret = api_key_create(name="ingest-only", scopes=["ingest"])
    response = client.get("/v1/contacts/u1", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 403


def test_the_timeline_lists_events_runs_and_emails_newest_first(api, journey_harness):
    journey_harness.start("activation-welcome", user_id="u1", email="u1@example.com")
    journey_harness.advance(days(1))
    journey_harness.emit("feature.used", user_id="u1")
    journey_harness.advance(days(1))

    items = api.get("/v1/contacts/u1/timeline").json()["items"]

    kinds = [(i["type"], i["name"]) for i in items]
    assert ("event", "feature.used") in kinds
    assert ("event", "user.created") in kinds
    assert ("journey_run", "activation-welcome") in kinds
    assert ("email", "activation/advanced") in kinds
    times = [i["at"] for i in items]
    assert times == sorted(times, reverse=True)
    run = next(i for i in items if i["type"] == "journey_run")
    assert run["status"] == "completed"
    assert run["detail"]["currentNode"] == "branch:advanced"
    email = next(i for i in items if i["name"] == "activation/welcome")
    assert email["status"] == "sent"


def test_create_api_key_command_prints_the_secret_once(db, capsys):
    from django.core.management import call_command

    from contacts.models import ApiKey
    from contacts.services import api_key_hash

    call_command("create_api_key", "backend", "--scope", "ingest", "--scope", "read", "--quiet")
    secret = capsys.readouterr().out.strip()

    key = ApiKey.objects.get()
    assert key.key_hash == api_key_hash(secret)
    assert key.scopes == ["ingest", "read"]
