"""Ingest's statements, counted: one event costs one statement, and so does a batch of 1,000.

The contact upsert, the event insert and the relay's NOTIFY are one statement; a single event that
nothing else must hear (no exit rule, no double opt-in, no destination) runs it as its own
transaction, so BEGIN and COMMIT are not paid either. A change that adds a round trip to this path
multiplies into every event a product sends: it must say why here. Savepoints are left out (the
test's transaction nests each call in one; in production there is none around a single event).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.ingest import EventDraft, event_ingest, events_ingest
from contacts.models import Contact, Event
from integrations import lifecycle as integrations_lifecycle

pytestmark = pytest.mark.django_db

STATEMENTS_PER_CALL = 1  # contacts upsert + events insert + NOTIFY, one statement
DESTINATIONS_LOOKUP = 1  # once a second per process: does anything listen to contact.created/updated?
KNOWN_KEYS_LOOKUP = 1  # only when events carry idempotency keys: which are stored already


def _statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


def _report(statements: list[str]) -> str:
    return "\n".join(f"{i + 1:3}. {sql[:160]}" for i, sql in enumerate(statements))


@pytest.fixture
def warm(db, monkeypatch):
    """The lifecycle's "nobody listens" memory filled, and kept for the test (never timing)."""
    monkeypatch.setattr(integrations_lifecycle, "NOBODY_LISTENS_SECONDS", 3600.0)
    integrations_lifecycle._nobody_listens.clear()
    event_ingest(name="warm", user_id="warm")


def _drafts(n: int, **extra) -> list[EventDraft]:
    return [
        EventDraft(name="page.viewed", user_id=f"u{i}", email=f"u{i}@example.com", **extra) for i in range(n)
    ]


@pytest.mark.parametrize("events", [1, 1000])
def test_an_event_or_a_batch_of_a_thousand_costs_one_statement(warm, events):
    with CaptureQueriesContext(connection) as captured:
        outcomes = events_ingest(drafts=_drafts(events))

    assert all(o.created for o in outcomes)
    assert Event.objects.filter(name="page.viewed").count() == events
    assert Contact.objects.filter(user_id__startswith="u").count() == events
    statements = _statements(captured)
    assert len(statements) == STATEMENTS_PER_CALL, _report(statements)
    assert "pg_notify" in statements[0]


def test_with_the_destinations_unknown_one_lookup_is_added(warm):
    integrations_lifecycle._nobody_listens.clear()
    with CaptureQueriesContext(connection) as captured:
        events_ingest(drafts=_drafts(100))

    statements = _statements(captured)
    assert len(statements) == STATEMENTS_PER_CALL + DESTINATIONS_LOOKUP, _report(statements)


def test_idempotency_keys_add_one_lookup_and_a_repeat_stores_nothing(warm):
    drafts = [EventDraft(name="order.paid", user_id=f"u{i}", idempotency_key=f"k{i}") for i in range(50)]
    with CaptureQueriesContext(connection) as captured:
        first = events_ingest(drafts=drafts)
    statements = _statements(captured)
    assert len(statements) == STATEMENTS_PER_CALL + KNOWN_KEYS_LOOKUP, _report(statements)

    with CaptureQueriesContext(connection) as captured:
        again = events_ingest(drafts=drafts)
    assert [o.created for o in again] == [False] * 50
    assert [o.event.id for o in again] == [o.event.id for o in first]
    assert len(_statements(captured)) == KNOWN_KEYS_LOOKUP, _report(_statements(captured))


def test_a_single_event_over_the_api_costs_one_statement_beyond_authentication(warm, api):
    api.post("/v1/events", {"name": "warm", "userId": "warm"})  # the key is cached now
    with CaptureQueriesContext(connection) as captured:
        response = api.post(
            "/v1/events", {"name": "page.viewed", "userId": "ada", "userEmail": "ada@example.com"}
        )

    assert response.status_code == 202
    statements = _statements(captured)
    assert len(statements) == STATEMENTS_PER_CALL, _report(statements)


def test_a_batch_over_the_api_costs_one_statement_beyond_authentication(warm, api):
    api.post("/v1/events", {"name": "warm", "userId": "warm"})
    batch = [{"name": "page.viewed", "userId": f"u{i}"} for i in range(1000)]
    with CaptureQueriesContext(connection) as captured:
        response = api.post("/v1/events/batch", {"events": batch})

    assert response.status_code == 202 and response.json()["accepted"] == 1000
    statements = _statements(captured)
    assert len(statements) == STATEMENTS_PER_CALL, _report(statements)


def test_the_ingest_statement_is_planned_once_per_connection(warm):
    """Planning the statement costs more than running it for one event: it is prepared on the
    connection and, after PostgreSQL's few trial plans, runs on its one generic plan."""
    for n in range(10):
        events_ingest(drafts=[EventDraft(name="page.viewed", user_id=f"p{n}")])

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%INSERT INTO contacts_event%"],
        )
        plans = cursor.fetchall()
    assert len(plans) == 1, "the ingest statement is not prepared on this connection"
    generic, custom = plans[0]
    assert generic >= 5 and custom <= 5, plans


def test_a_column_added_to_contacts_under_a_running_process_does_not_break_its_statement(warm):
    """A migration that adds a contact column runs while the web processes still hold the
    statement prepared: its result names the contact's columns, so their next event still goes in."""
    events_ingest(drafts=[EventDraft(name="page.viewed", user_id="before")])
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE contacts_contact ADD COLUMN added_later integer")

    [outcome] = events_ingest(drafts=[EventDraft(name="page.viewed", user_id="after")])

    assert outcome.created and outcome.contact.user_id == "after"


@pytest.mark.parametrize("contacts", [300, 20_000])
def test_the_statement_reads_known_contacts_by_their_index_whatever_their_number(warm, contacts):
    """PostgreSQL estimates `jsonb_to_recordset` at 100 rows: joined to the contacts, a hash join
    over every contact looked cheaper than 100 index probes, and each event's cost grew with the
    table (at 20,000 contacts, ten times the statement's own work). `user_id = ANY(...)` (10 rows
    estimated) still scanned a table of a few hundred contacts, and a prepared statement keeps the
    plan it made then until the next ANALYZE, while ingest can grow the table tenfold (autovacuum
    looks once a minute). Known contacts are read by a LATERAL probe per user id."""
    from contacts.ingest import _INGEST_SQL

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (id, user_id, email, properties, category_opt_outs, "
            "category_opt_ins, confirmation_required, created_at, updated_at) "
            "SELECT gen_random_uuid(), 'many' || n, 'many' || n || '@example.com', '{\"plan\": \"pro\"}', '{}', '{}', false, now(), now() "
            "FROM generate_series(1, %s) n",
            [contacts],
        )
        cursor.execute("ANALYZE contacts_contact")
        cursor.execute(
            "EXPLAIN " + _INGEST_SQL,
            {
                "contacts": '[{"id": "00000000-0000-0000-0000-000000000001", "user_id": "many7", '
                '"email": "", "properties": {}, "confirm": false}]',
                "events": '[{"id": "00000000-0000-0000-0000-000000000002", "user_id": "many7", '
                '"name": "page.viewed", "properties": {}, "occurred_at": "2026-01-01T00:00:00Z", "key": null}]',
                "now": "2026-01-01T00:00:00Z",
                "source": "api",
                "channel": "",
                "notify": False,
            },
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Seq Scan on contacts_contact" not in plan, plan
