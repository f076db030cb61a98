"""Ingest as sets: a batch is one transaction that still answers per item, keys are owned by one
user, and a key-holder past its rate limit is told when to come back."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

from contacts.models import Contact, Event

pytestmark = pytest.mark.django_db


def item(user: str = "u1", name: str = "page.viewed", **extra):
    return {"name": name, "userId": user, **extra}


@contextmanager
def database_refusing(name: str, errcode: str):
    """A real refusal from PostgreSQL (SQLSTATE `errcode`) whenever an event called `name` is stored."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION refuse_event() RETURNS trigger AS $$
            BEGIN
              IF NEW.name = '{name}' THEN RAISE EXCEPTION 'refused {name}' USING ERRCODE = '{errcode}'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_event BEFORE INSERT ON contacts_event
              FOR EACH ROW EXECUTE FUNCTION refuse_event();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_event ON contacts_event; DROP FUNCTION refuse_event();")


@pytest.fixture
def poison_trigger():
    """As a value PostgreSQL cannot store would be refused."""
    with database_refusing("poison", "data_exception"):
        yield


@pytest.fixture
def busy_trigger():
    """As PostgreSQL answers under a lock timeout."""
    with database_refusing("busy", "lock_not_available"):
        yield


def test_an_item_the_database_refuses_sinks_no_other_and_every_item_gets_an_answer(api, poison_trigger):
    batch = [
        item("u1", idempotencyKey="k1"),
        item("u2", name="poison", idempotencyKey="k2"),
        item("u3", idempotencyKey="k3"),
    ]
    response = api.post("/v1/events/batch", {"events": batch})

    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert "database refused" in results[1]["errors"][0]["message"]
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == ["k1", "k3"]

    # The client retries the whole batch: nothing is stored twice.
    again = api.post("/v1/events/batch", {"events": batch}).json()["results"]
    assert [r["status"] for r in again] == ["duplicate", "rejected", "duplicate"]
    assert again[0]["eventId"] == results[0]["eventId"]
    assert Event.objects.count() == 2


def test_a_batch_merges_one_users_contact_fields_in_order_and_upserts_each_contact_once(api):
    batch = [
        item("ada", contactProperties={"plan": "free", "team": "a"}, userEmail="ada@example.com"),
        item("bob"),
        item("ada", contactProperties={"plan": "pro"}),
    ]
    response = api.post("/v1/events/batch", {"events": batch})

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 3
    ada = Contact.objects.get(user_id="ada")
    assert ada.properties == {"plan": "pro", "team": "a"} and ada.email == "ada@example.com"
    assert body["results"][0]["contactId"] == body["results"][2]["contactId"] == str(ada.id)
    assert Contact.objects.count() == 2


def test_a_key_used_twice_in_one_batch_stores_one_event(api):
    batch = [item("u1", idempotencyKey="same"), item("u1", idempotencyKey="same")]
    results = api.post("/v1/events/batch", {"events": batch}).json()["results"]

    assert [r["status"] for r in results] == ["accepted", "duplicate"]
    assert results[0]["eventId"] == results[1]["eventId"]
    assert Event.objects.count() == 1


def test_a_key_that_belongs_to_another_users_event_is_a_409_not_a_silent_drop(api):
    api.post("/v1/events", item("alice", idempotencyKey="order-1"))
    response = api.post("/v1/events", item("mallory", idempotencyKey="order-1"))

    assert response.status_code == 409
    assert "another user" in response.json()["detail"]
    assert "alice" not in response.json()["detail"]
    in_batch = api.post("/v1/events/batch", {"events": [item("mallory", idempotencyKey="order-1")]})
    assert in_batch.json()["results"][0]["status"] == "rejected"
    assert Event.objects.count() == 1


def test_an_api_key_past_its_request_rate_gets_429_with_retry_after_and_nothing_stored(api, settings):
    settings.INGEST_RATE_LIMIT_REQUESTS = 3
    answers = [api.post("/v1/events", item(f"u{i}")) for i in range(5)]

    statuses = [a.status_code for a in answers]
    # One-second windows: a window may turn over mid-loop, so count rather than match positions.
    assert statuses.count(429) >= 1 and set(statuses) <= {202, 429}
    limited = next(a for a in answers if a.status_code == 429)
    assert limited["Retry-After"] == "1"
    assert "more than 3 requests" in limited.json()["detail"]
    assert Event.objects.count() == statuses.count(202)


def test_a_batch_counts_every_event_against_the_events_limit(api, settings):
    settings.INGEST_RATE_LIMIT_EVENTS = 10
    response = api.post("/v1/events/batch", {"events": [item(f"u{i}") for i in range(11)]})

    assert response.status_code == 429
    assert Event.objects.count() == 0


def test_a_key_revoked_after_use_is_refused_at_once_though_keys_are_cached(api, client):
    from contacts.models import ApiKey
    from contacts.services import api_key_revoke

    assert api.post("/v1/events", item("u1")).status_code == 202
    api_key_revoke(key=ApiKey.objects.get())

    refused = api.post("/v1/events", item("u1"))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_a_key_with_its_own_rate_limit_is_held_to_it(client, db):
    from contacts.services import api_key_create

    _, secret = api_key_create(name="slow", scopes=["ingest"], rate_limit=1)
    headers = {"Authorization": f"Bearer {secret}"}
    statuses = [
        client.post("/v1/events", item(f"u{i}"), content_type="application/json", headers=headers).status_code
        for i in range(4)
    ]

    assert statuses.count(429) >= 2


def test_ingest_goes_on_when_redis_cannot_count(api, settings, monkeypatch):
    """PostgreSQL holds what a client sent; the limiter's store being down must not refuse it."""
    import socket

    from contacts import ratelimit

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.INGEST_RATE_LIMIT_REQUESTS = 1
    monkeypatch.setattr(ratelimit, "_client", None)

    statuses = [api.post("/v1/events", item(f"u{i}")).status_code for i in range(3)]

    assert statuses == [202, 202, 202]
    assert Event.objects.count() == 3


def test_a_busy_database_is_a_503_to_retry_not_a_refusal_of_the_clients_events(api, busy_trigger):
    response = api.post("/v1/events/batch", {"events": [item("u1"), item("u2", name="busy")]})

    assert response.status_code == 503
    assert response["Retry-After"]
    assert "remove the offending value" not in response.json()["detail"]
    assert Event.objects.count() == 0


def test_properties_orjson_cannot_write_are_stored_as_the_json_module_wrote_them():
    """The rows travel as JSON written by orjson; an integer beyond 64 bits (which orjson refuses)
    falls back to the json module, and a time or a decimal from a caller in the process is written
    by Django's encoder as before, not in orjson's own format."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from contacts.ingest import EventDraft, events_ingest

    at = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    [big, typed] = events_ingest(
        drafts=[
            EventDraft(name="page.viewed", user_id="big", properties={"n": 2**70}),
            EventDraft(name="page.viewed", user_id="typed", properties={"at": at, "amount": Decimal("1.50")}),
        ]
    )

    assert Event.objects.get(pk=big.event.pk).properties == {"n": 2**70}
    assert Event.objects.get(pk=typed.event.pk).properties == {
        "at": "2026-01-01T12:00:00.123Z",
        "amount": "1.50",
    }
