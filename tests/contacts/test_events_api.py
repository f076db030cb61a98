from __future__ import annotations

import json

import pytest

from contacts.models import Contact, Event
from journeys.models import JourneyRun

pytestmark = pytest.mark.django_db


def event(**overrides):
    body = {
        "name": "user.created",
        "userId": "user_1",
        "userEmail": "ada@example.com",
        "eventProperties": {"plan": "pro"},
        "contactProperties": {"first_name": "Ada"},
    }
    body.update(overrides)
    return body


def test_an_event_is_accepted_with_its_event_and_contact_ids(api):
    response = api.post("/v1/events", event())

    assert response.status_code == 202
    body = response.json()
    stored = Event.objects.get(pk=body["eventId"])
    assert stored.name == "user.created"
    assert stored.properties == {"plan": "pro"}
    assert str(stored.contact_id) == body["contactId"]
    assert body["exitedRuns"] == [] and body["duplicate"] is False
    assert stored.dispatch_state == Event.DispatchState.PENDING


def test_contact_properties_merge_into_the_contact(api):
    api.post("/v1/events", event(contactProperties={"first_name": "Ada", "plan": "pro"}))
    api.post(
        "/v1/events", event(contactProperties={"plan": "enterprise"}, email="ada@new.example", userEmail=None)
    )

    contact = Contact.objects.get(user_id="user_1")
    assert contact.properties == {"first_name": "Ada", "plan": "enterprise"}
    assert contact.email == "ada@new.example"


def test_the_same_idempotency_key_returns_the_first_result_and_stores_nothing(api):
    first = api.post("/v1/events", event(idempotencyKey="evt-1")).json()
    again = api.post("/v1/events", event(idempotencyKey="evt-1", eventProperties={"plan": "other"}))

    assert again.status_code == 200
    assert again.json()["eventId"] == first["eventId"]
    assert again.json()["duplicate"] is True
    assert Event.objects.count() == 1
    assert Event.objects.get().properties == {"plan": "pro"}


def test_the_idempotency_key_header_works_too(api):
    first = api.post("/v1/events", event(), **{"Idempotency-Key": "hdr-1"}).json()
    again = api.post("/v1/events", event(), **{"Idempotency-Key": "hdr-1"}).json()

    assert again["eventId"] == first["eventId"]
    assert Event.objects.count() == 1


def test_a_missing_field_is_a_422_that_names_it(api):
    response = api.post("/v1/events", {"userId": "u"})

    assert response.status_code == 422
    assert "name" in response.json()["detail"]
    assert Event.objects.count() == 0 and Contact.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"userEmail": "not-an-email"}, "userEmail"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2026-01-01T10:00:00"}, "timezone"),
        ({"eventProperties": [1, 2]}, "eventProperties"),
        ({"name": ""}, "name"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_rejected_with_a_message_naming_the_problem(api, overrides, field):
    response = api.post("/v1/events", event(**overrides))

    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert Event.objects.count() == 0


def test_malformed_json_is_a_4xx_not_a_500(api, client, api_key_secret):
    response = client.post(
        "/v1/events",
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key_secret}"},
    )
    assert 400 <= response.status_code < 500


def test_an_oversize_body_is_a_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/v1/events", event(eventProperties={"blob": "x" * 5000}))

    assert response.status_code == 413
    assert Event.objects.count() == 0


def test_a_timestamp_sets_when_the_event_occurred(api):
    body = api.post("/v1/events", event(timestamp="2026-03-01T12:00:00Z")).json()
    assert Event.objects.get(pk=body["eventId"]).occurred_at.isoformat() == "2026-03-01T12:00:00+00:00"


def test_an_exit_event_exits_the_contacts_live_runs_and_says_so(api, journey_harness):
    journey_harness.start("churn-prevention", user_id="user_1", email="ada@example.com")
    run = journey_harness.run("churn-prevention", "user_1")
    assert run.status == JourneyRun.Status.WAITING

    body = api.post("/v1/events", event(name="payment.succeeded")).json()

    run.refresh_from_db()
    assert body["exitedRuns"] == [str(run.id)]
    assert run.status == JourneyRun.Status.EXITED
    assert run.exit_reason == "exit_on:payment.succeeded"


class TestBatch:
    def test_each_item_gets_its_own_result_and_a_bad_one_sinks_no_other(self, api):
        response = api.post(
            "/v1/events/batch",
            {"events": [event(userId="a"), {"name": "x"}, event(userId="b", idempotencyKey="k")]},
        )

        assert response.status_code == 207
        body = response.json()
        assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
        assert body["results"][1]["errors"][0]["field"] == "events[1].userId"
        assert (body["accepted"], body["rejected"], body["duplicates"]) == (2, 1, 0)
        assert set(Event.objects.values_list("contact__user_id", flat=True)) == {"a", "b"}

    def test_a_clean_batch_is_202_and_repeats_are_duplicates(self, api):
        events = [event(userId=f"u{i}", idempotencyKey=f"k{i}") for i in range(3)]
        assert api.post("/v1/events/batch", {"events": events}).status_code == 202

        again = api.post("/v1/events/batch", {"events": events}).json()
        assert again["duplicates"] == 3
        assert Event.objects.count() == 3

    def test_more_than_a_thousand_events_is_a_413(self, api):
        response = api.post("/v1/events/batch", {"events": [event()] * 1001})
        assert response.status_code == 413
        assert "1000" in response.json()["detail"]
        assert Event.objects.count() == 0

    def test_an_empty_batch_is_a_422(self, api):
        assert api.post("/v1/events/batch", {"events": []}).status_code == 422


class TestAuth:
    def test_no_key_is_a_401_with_a_reason(self, client, db):
        response = client.post("/v1/events", event(), content_type="application/json")
        assert response.status_code == 401
        assert "Authorization" in response.json()["detail"]

    def test_an_unknown_key_is_a_401(self, client, db):
        response = client.post(
            "/v1/events",
            event(),
            content_type="application/json",
            headers={"Authorization": "Bearer hsk_nope"},
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "unknown API key"

    def test_a_revoked_key_is_a_401(self, client, db):
        from contacts.services import api_key_create, api_key_revoke

        key, secret = api_key_create(name="old", scopes=["ingest"])
        api_key_revoke(key=key)
        response = client.post(
            "/v1/events",
            event(),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 401
        assert "revoked" in response.json()["detail"]

    def test_an_expired_key_is_a_401(self, client, db):
        from datetime import timedelta

        from django.utils import timezone

        from contacts.services import api_key_create

        _, secret = api_key_create(
            name="old", scopes=["ingest"], expires_at=timezone.now() - timedelta(seconds=1)
        )
        response = client.post(
            "/v1/events",
            event(),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]

    def test_a_key_without_the_scope_is_a_403_naming_it(self, client, db):
        from contacts.services import api_key_create

        _, secret = api_key_create(name="reader", scopes=["read"])
        response = client.post(
            "/v1/events",
            event(),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 403
        assert "ingest" in response.json()["detail"]
        assert Event.objects.count() == 0

    def test_only_a_hash_of_the_secret_is_stored(self, db):
        from contacts.models import ApiKey
        from contacts.services import api_key_create

        key, secret = api_key_create(name="k", scopes=["ingest"])
        stored = ApiKey.objects.get(pk=key.pk)
        assert secret not in json.dumps([stored.key_hash, stored.prefix, stored.name])
        assert len(stored.key_hash) == 64


def test_openapi_docs_are_served(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert "/v1/events/batch" in response.json()["paths"]
