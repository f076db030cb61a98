"""`manage.py journey_backtest`: what a journey would have done with a period's recorded events.

A journey module is written to disk and a history is recorded for it by hand (events with their
own timestamps, consent changes in the ledger). The backtest's counts are checked against that
history worked out by hand; a changed version (a template renamed, a wait shortened) is run
beside it and the difference is exactly what the change does; and the whole replay is shown to
send nothing and write nothing.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection

from contacts.models import ConsentChange, Contact, Event
from journeys.models import JourneyRun
from journeys.registry import registry
from tests.emails.conftest import smtp_server  # noqa: F401  (the aiosmtpd sink, as a fixture here)

V1 = """
from journeys.definition import define_journey
from journeys.durations import days
from journeys.send import send_email
from journeys.shipped.constants import Templates


class Events:
    STARTED = "bt.started"
    PAID = "bt.paid"
    LEFT = "bt.left"


@define_journey(id="bt-demo", name="Backtest demo", trigger=Events.STARTED, exit_on=[Events.LEFT])
async def bt_demo(user, ctx):
    await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)
    paid = await ctx.wait_for_event(Events.PAID, timeout=days(3), label="await-payment")
    if paid.timed_out:
        await send_email(to=user.email, template=Templates.ACTIVATION_NUDGE)
    else:
        await send_email(to=user.email, template=Templates.ACTIVATION_ADVANCED)


JOURNEYS = [bt_demo]
"""

# The change: the reminder is another template, and the wait is a day instead of three.
V2 = V1.replace("Templates.ACTIVATION_NUDGE", "Templates.ACTIVATION_ADVANCED").replace(
    "timeout=days(3)", "timeout=days(1)"
)

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
PERIOD = ["--since", "2026-03-01", "--until", "2026-03-31"]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute)


@pytest.fixture
def demo(tmp_path, monkeypatch, journey_register):
    (tmp_path / "bt_demo_v1.py").write_text(textwrap.dedent(V1))
    (tmp_path / "bt_demo_v2.py").write_text(textwrap.dedent(V2))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bt_demo_v1", None)
    module = importlib.import_module("bt_demo_v1")
    journey_register(*module.JOURNEYS)
    yield tmp_path
    sys.modules.pop("bt_demo_v1", None)


def record(user_id: str, name: str, when: datetime, *, unsubscribed: bool = False, **properties) -> Event:
    """An event as ingest stored it then (received when it occurred)."""
    contact, _ = Contact.objects.get_or_create(user_id=user_id, defaults={"email": f"{user_id}@example.com"})
    if unsubscribed and contact.unsubscribed_at is None:
        Contact.objects.filter(pk=contact.pk).update(unsubscribed_at=when)
    event = Event.objects.create(contact=contact, name=name, occurred_at=when, properties=properties)
    Event.objects.filter(pk=event.pk).update(received_at=when, dispatch_state="dispatched")
    return event


def consent(user_id: str, kind: str, when: datetime) -> None:
    contact = Contact.objects.get(user_id=user_id)
    ConsentChange.objects.create(
        contact=contact, email=contact.email, kind=kind, source="preference_center", occurred_at=when
    )
    Contact.objects.filter(pk=contact.pk).update(
        unsubscribed_at=when if kind == ConsentChange.Kind.UNSUBSCRIBED else None
    )


@pytest.fixture
def history(db, demo):
    """The recorded period, and what the journey does with it, worked out by hand:

    ada   starts, pays after 6 hours          → welcome, advanced (the wait received the payment)
    bob   starts, never pays                  → welcome, nudge three days later (the wait timed out)
    cy    starts, leaves the same evening     → welcome, then exit_on:bt.left
    dee   starts, starts again on day 5       → welcome, nudge; the second start is skipped
                                                 already_entered_once (entry_limit "once")
    eve   unsubscribed before her start       → skipped user_unsubscribed
    fay   starts, unsubscribes the next day   → welcome; the nudge is suppressed (unsubscribed)
    hal   unsubscribed before the period, starts on day 1, resubscribes on day 2 → skipped
          user_unsubscribed (the ledger's resubscription is after his start)
    ivy   only views pages (no trigger)       → not replayed
    """
    record("ada", "bt.started", at(0, 9))
    record("ada", "bt.paid", at(0, 15))
    record("bob", "bt.started", at(0, 10))
    record("cy", "bt.started", at(0, 11))
    record("cy", "bt.left", at(0, 20))
    record("dee", "bt.started", at(0, 12))
    record("dee", "bt.started", at(5, 12))
    record("eve", "page.viewed", at(-10, 8))
    consent("eve", ConsentChange.Kind.UNSUBSCRIBED, at(0, 8))
    record("eve", "bt.started", at(0, 13))
    record("fay", "bt.started", at(0, 14))
    consent("fay", ConsentChange.Kind.UNSUBSCRIBED, at(1, 8))
    record("hal", "page.viewed", at(-10, 8))
    consent("hal", ConsentChange.Kind.UNSUBSCRIBED, at(-5, 8))
    record("hal", "bt.started", at(1, 9))
    consent("hal", ConsentChange.Kind.RESUBSCRIBED, at(2, 9))
    record("ivy", "page.viewed", at(1, 9))
    record("ada", "page.viewed", at(1, 10))  # no name the journey reads: not replayed


def backtest(*args: str) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("journey_backtest", "bt-demo", *PERIOD, "--json", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_the_counts_are_what_the_history_gives_by_hand(history):
    report, _ = backtest()
    current = report["current"]
    assert (report["contacts"], report["events"], report["consent_changes"]) == (7, 10, 3)
    assert current["enrolled"] == 5
    assert current["skipped"] == {"user_unsubscribed": 2, "already_entered_once": 1}
    assert current["runs"] == {"completed": 4, "exited": 1}
    assert current["exits"] == {"exit_on:bt.left": 1}
    assert current["sends"] == {"activation/welcome": 5, "activation/nudge": 2, "activation/advanced": 1}
    assert current["not_sent"] == {"suppressed:unsubscribed": 1}
    assert current["waits"] == {"await-payment": {"received": 1, "timed_out": 3, "unresolved": 1}}
    assert current["sends_per_day"] == {
        "2026-03-02": {"activation/advanced": 1, "activation/welcome": 5},
        "2026-03-05": {"activation/nudge": 2},
    }
    assert report["changed"] is None and report["difference"] is None


def test_a_template_renamed_and_a_wait_shortened_show_exactly_their_difference(history, demo):
    report, _ = backtest("--against", str(demo / "bt_demo_v2.py"))
    diff = report["difference"]
    assert report["changed"]["sends"] == {"activation/welcome": 5, "activation/advanced": 3}
    assert diff["templates"] == {
        "activation/advanced": {"current": 1, "changed": 3},
        "activation/nudge": {"current": 2, "changed": 0},
        "activation/welcome": {"current": 5, "changed": 5},
    }
    # bob and dee get the other reminder two days sooner; nobody else's mail changes.
    assert (diff["contacts"], diff["other_emails"], diff["only_timing"]) == (2, 2, 0)
    assert [e["user_id"] for e in diff["examples"]] == ["bob", "dee"]
    bob = diff["examples"][0]
    assert [(s["template"], s["at"]) for s in bob["current"]] == [
        ("activation/welcome", "2026-03-02T10:00:00+00:00"),
        ("activation/nudge", "2026-03-05T10:00:00+00:00"),
    ]
    assert [(s["template"], s["at"]) for s in bob["changed"]] == [
        ("activation/welcome", "2026-03-02T10:00:00+00:00"),
        ("activation/advanced", "2026-03-03T10:00:00+00:00"),
    ]
    assert report["changed"]["waits"] == {"await-payment": {"received": 1, "timed_out": 3, "unresolved": 1}}
    assert report["changed"]["version"] != report["current"]["version"]


def test_against_a_module_path_works_like_a_file(history, demo):
    (demo / "bt_demo_v3.py").write_text(textwrap.dedent(V2))
    report, _ = backtest("--against", "bt_demo_v3")
    assert report["difference"]["contacts"] == 2


def test_the_text_report_names_the_counts_and_the_examples(history, demo):
    out = io.StringIO()
    call_command(
        "journey_backtest",
        "bt-demo",
        *PERIOD,
        "--against",
        str(demo / "bt_demo_v2.py"),
        "--no-progress",
        stdout=out,
    )
    text = out.getvalue()
    assert "enrolled 5; skipped 3: user_unsubscribed 2, already_entered_once 1" in text
    assert "activation/nudge 2 → 0 (-2)" in text
    assert "2 contacts would get their emails differently" in text
    assert "bob:" in text and "activation/nudge 2026-03-05T10:00" in text


def test_limit_contacts_replays_the_first_contacts_by_their_first_trigger(history):
    report, _ = backtest("--limit-contacts", "2")
    assert (report["contacts"], report["events"]) == (2, 3)  # ada (start, payment) and bob
    assert report["current"]["sends"] == {
        "activation/welcome": 2,
        "activation/advanced": 1,
        "activation/nudge": 1,
    }


def test_the_progress_bar_goes_to_stderr(history):
    _, err = backtest()
    assert "replaying" in err and "10/10" in err


def test_an_earlier_entry_counts_for_the_entry_limit(history):
    contact = Contact.objects.get(user_id="bob")
    JourneyRun.objects.create(
        journey_id="bt-demo", contact=contact, status="completed", entered_at=at(-20, 9), ended_at=at(-17, 9)
    )
    report, _ = backtest()
    assert report["current"]["skipped"] == {"already_entered_once": 2, "user_unsubscribed": 2}


# --- isolation: nothing is sent, nothing outside the isolation is written ------------------------


def _row_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")
        tables = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def _redis_state() -> dict[str, int]:
    from operations.checks import redis_client

    client = redis_client()
    return {
        key.decode(): (client.llen(key) if client.type(key) == b"list" else -1) for key in client.keys("*")
    }


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.django_db(transaction=True)
def test_the_backtest_sends_nothing_and_writes_nothing(demo, smtp_server, monkeypatch, settings, workers):  # noqa: F811
    """With one process, and with two replaying a share of the contacts each (each on its own
    connection, in an isolation of its own)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    record("ada", "bt.started", at(0, 9))
    record("bob", "bt.started", at(0, 10))
    record("bob", "bt.left", at(2, 10))
    record("cy", "bt.started", at(0, 10))
    record("cy", "bt.paid", at(1, 10))

    engine_calls = []

    def no_engine(*args, **kwargs):
        engine_calls.append(args)
        raise AssertionError("the backtest reached the engine")

    monkeypatch.setattr("journeys.runtime.engine.hatchet_client", no_engine)
    monkeypatch.setattr("journeys.runtime.engine.engine_push", no_engine)
    monkeypatch.setattr("journeys.runtime.engine.engine_cancel_runs", no_engine)
    before, redis_before = _row_counts(), _redis_state()
    report, _ = backtest("--workers", workers)
    assert report["current"]["sends"] == {
        "activation/welcome": 3,
        "activation/advanced": 1,
        "activation/nudge": 1,
    }
    assert _row_counts() == before
    # No Celery task was published: no queue appeared or grew (keys of other tests may expire).
    grown = {k: n for k, n in _redis_state().items() if k not in redis_before or n > redis_before[k]}
    assert grown == {}
    assert smtp_server.raw == [] and mail.outbox == []
    assert engine_calls == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_schema(), (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'backtest_%%')"
        )
        assert cursor.fetchone() == ("public", 0)


# --- bad input: exit status 2 with a message ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-journey"], "no journey 'no-such-journey'; known:"),
        (["bt-demo", "--since", "last tuesday"], "--since 'last tuesday' is neither a span"),
        (["bt-demo", "--since", "2d", "--until", "5d"], "must be before --until"),
        (["bt-demo", "--against", "no_such_module_anywhere"], "no module 'no_such_module_anywhere'"),
        (["bt-demo", "--against", "/nowhere/v2.py"], "no such file"),
        (["bt-demo", "--against", "journeys.shipped.welcome"], "does not define the journey 'bt-demo'"),
        (["bt-demo", "--limit-contacts", "0"], "--limit-contacts must be at least 1"),
        (["bt-demo", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_input_exits_2_with_a_message(db, demo, args, message):
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("journey_backtest", *args, stdout=io.StringIO(), stderr=err)
    assert exit_.value.code == 2
    assert message in err.getvalue()


def test_the_registry_is_as_it_was_afterwards(history):
    before = [j.id for j in registry.all()]
    backtest()
    assert [j.id for j in registry.all()] == before


def test_render_renders_every_email_into_the_counting_backend_and_counts_the_same(history):
    from journeys.backtest import RecordingEmailBackend

    before = RecordingEmailBackend.sent
    report, _ = backtest("--render")
    assert report["current"]["sends"] == {
        "activation/welcome": 5,
        "activation/nudge": 2,
        "activation/advanced": 1,
    }
    assert RecordingEmailBackend.sent - before == 8
    assert mail.outbox == []


def test_without_render_no_email_is_rendered_or_handed_to_a_backend(history):
    from journeys.backtest import RecordingEmailBackend

    before = RecordingEmailBackend.sent
    report, _ = backtest()
    assert sum(report["current"]["sends"].values()) == 8
    assert RecordingEmailBackend.sent == before


def test_the_replay_costs_a_bounded_number_of_statements_per_event(history):
    """The hot path's budget: the isolation and the seeding are a fixed handful of statements,
    and each replayed event and what the journey does with it a bounded number more (ingest,
    enrollment, the step log, the sends), with no statement whose count grows with the runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        report, _ = backtest()
    assert report["events"] == 10
    # 98, and one more on a connection that used a temporary table before (the local buffers'
    # setting is then refused, and its savepoint rolled back): 99 with the contact's lock before
    # an exit, 104 with each enrollment in two statements, 108 with a run's end apart from its
    # last send's record, 196 with the replay's savepoints sent, 203 with an UPDATE marking each
    # send sent, 213 with the harness's read when a wait begins, 234 when written
    assert len(captured.captured_queries) <= 99, len(captured.captured_queries)


def test_what_production_did_in_the_period_does_not_change_the_replay(history):
    """The replay starts from the recorded events, not from the runs and emails production made of
    them: a real run of the period and its email are not seen (no already_entered_once for ada,
    no suppress window), and stay as they were."""
    from emails.models import EmailLog

    ada = Contact.objects.get(user_id="ada")
    real = JourneyRun.objects.create(journey_id="bt-demo", contact=ada, status="waiting", entered_at=at(0, 9))
    EmailLog.objects.create(
        to_email=ada.email,
        contact=ada,
        run=real,
        template="activation/welcome",
        subject="Welcome",
        category="journey",
        status="sent",
        idempotency_key=f"journey-run:{real.id}:1",
        created_at=at(0, 9),
        sent_at=at(0, 9),
    )
    report, _ = backtest()
    assert report["current"]["enrolled"] == 5
    assert report["current"]["sends"]["activation/welcome"] == 5
    real.refresh_from_db()
    assert real.status == "waiting" and EmailLog.objects.count() == 1


def test_the_isolation_has_statistics_once_analyzed(history):
    """Tables of a transaction never committed are out of autovacuum's sight: without ANALYZE the
    planner takes them for empty ones, whatever they hold."""
    from django.db import transaction

    from journeys.backtest_data import isolation_analyze, isolation_create

    with transaction.atomic():
        isolation = isolation_create()
        sql = "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'contacts_contact'"
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO contacts_contact SELECT * FROM public.contacts_contact")
            cursor.execute(sql, [isolation.schema])
            assert cursor.fetchone()[0] == -1  # never analyzed
            isolation_analyze(isolation)
            cursor.execute(sql, [isolation.schema])
            assert cursor.fetchone()[0] == Contact.objects.using("default").count()
        transaction.set_rollback(True)


def test_the_isolation_leaves_out_the_indexes_the_replay_never_reads(history):
    """The Studio's, the sweeps' and the search indexes are not copied (each write would follow
    them for nothing); every constraint and every lookup index the replay reads by is."""
    from django.db import transaction

    from journeys.backtest_data import UNUSED_INDEXES, isolation_create

    definitions = """
        SELECT t.relname, regexp_replace(pg_get_indexdef(i.oid), '^.* USING ', ''), i.relname, x.indisunique
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %s
    """
    with connection.cursor() as cursor:
        cursor.execute(definitions, ["public"])
        source = {(table, body): (name, unique) for table, body, name, unique in cursor.fetchall()}
    named = {name for name, _ in source.values()}
    assert UNUSED_INDEXES <= named, f"not in the schema: {sorted(UNUSED_INDEXES - named)}"
    with transaction.atomic():
        isolation = isolation_create()
        with connection.cursor() as cursor:
            cursor.execute(definitions, [isolation.schema])
            copied = {(table, body) for table, body, _, _ in cursor.fetchall()}
        transaction.set_rollback(True)
    left_out = {source[key][0] for key in source.keys() - copied}
    assert left_out == UNUSED_INDEXES
    assert {source[key][0] for key in copied & source.keys()} >= {
        "journeyrun_one_live_per_contact",
        "run_contact_journey_idx",
        "event_contact_name_idx",
        "email_contact_idx",
        "email_held_idx",
        "runstep_unique_position",
    }


# --- history only: events nothing reacts to are stored set-based, with the same report ----------

HISTORY_V1 = """
from journeys.definition import define_journey
from journeys.durations import days, hours
from journeys.send import send_email
from journeys.shipped.constants import Templates


@define_journey(id="bt-history", name="Backtest history", trigger="bt.started", exit_on=["bt.left"])
async def bt_history(user, ctx):
    await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)
    paid = await ctx.wait_for_event("bt.paid", timeout=days(2), label="await-payment")
    await ctx.sleep(hours(12), label="settle")
    if (await ctx.history.has_event(user.id, "bt.viewed")).found:
        await send_email(to=user.email, template=Templates.ACTIVATION_ADVANCED)
    elif paid.timed_out:
        await send_email(to=user.email, template=Templates.ACTIVATION_NUDGE)
    if (await ctx.history.has_event(user.id, "bt.clicked", within=hours(6))).count >= 2:
        await send_email(to=user.email, template=Templates.ACTIVATION_NUDGE)


JOURNEYS = [bt_history]
"""

# The change: a shorter wait, and it waits for a view where the first reads it from history.
HISTORY_V2 = HISTORY_V1.replace("timeout=days(2)", "timeout=days(1)").replace(
    'wait_for_event("bt.paid"', 'wait_for_event("bt.viewed"'
)


@pytest.fixture
def history_stream(db, tmp_path, monkeypatch, journey_register):
    """A mixed stream: triggers, payments, exits, and views and clicks that only history reads,
    some before the period, some at the very moment a run wakes (which comes first) or starts,
    in the same received batch as a trigger, and from another source."""
    (tmp_path / "bt_history_v1.py").write_text(textwrap.dedent(HISTORY_V1))
    (tmp_path / "bt_history_v2.py").write_text(textwrap.dedent(HISTORY_V2))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bt_history_v1", None)
    journey_register(*importlib.import_module("bt_history_v1").JOURNEYS)
    for n in range(12):
        user, start = f"h{n:02d}", at(n % 4, 9 + n)
        if n % 3 == 0:
            record(user, "bt.viewed", at(-3, 10))  # before the period
        record(user, "bt.started", start)
        if n % 2:
            record(user, "bt.viewed", start + timedelta(days=2))  # the moment the wait times out
        if n % 4 == 1:
            record(user, "bt.paid", start + timedelta(hours=5))
        if n % 5 == 2:
            record(user, "bt.viewed", start + timedelta(days=2, hours=11))
        if n % 6 == 3:
            record(user, "bt.viewed", start)  # the trigger's moment and batch
        if n in (8, 10):  # the moment the history is read (the wake comes first), and just after
            record(user, "bt.viewed", start + timedelta(days=2, hours=12, minutes=30 * (n == 10)))
        if n % 7 == 4:
            record(user, "bt.left", start + timedelta(days=1))
        for c in range(n % 3):
            record(user, "bt.clicked", start + timedelta(days=2, hours=6 + c))
        if n == 5:
            event = record(user, "bt.clicked", start + timedelta(days=2, hours=10))
            Event.objects.filter(pk=event.pk).update(source="webhook")
        record(user, "bt.viewed", start + timedelta(days=4))  # after every run's reads
    consent("h07", ConsentChange.Kind.UNSUBSCRIBED, at(3, 22))
    yield tmp_path
    sys.modules.pop("bt_history_v1", None)


def _comparable(report) -> dict:
    found = report.as_dict()
    found.pop("elapsed_seconds"), found.pop("events_per_second")
    sequences = [r.sequences for r in (report.current, report.changed) if r is not None]
    return {**found, "sequences": sequences}


@pytest.mark.parametrize("changed", [False, True])
def test_history_stored_in_bulk_gives_the_event_by_event_report(history_stream, changed):
    from journeys.backtest import journey_backtest
    from journeys.management.commands.journey_backtest import load_changed

    journey = registry.get("bt-history")
    against = load_changed(str(history_stream / "bt_history_v2.py"), "bt-history") if changed else None
    reports = [
        journey_backtest(
            journey=journey,
            since=datetime(2026, 3, 1, tzinfo=UTC),
            until=datetime(2026, 3, 31, tzinfo=UTC),
            against=against,
            history_in_bulk=in_bulk,
        )
        for in_bulk in (False, True)
    ]
    statements = [report.statements for report in reports]  # asked, savepoints included
    one_by_one, in_bulk = reports
    assert _comparable(in_bulk) == _comparable(one_by_one)
    current = one_by_one.current
    assert current.sends.get("activation/advanced") and current.sends.get("activation/nudge")
    assert current.exits and (not changed or one_by_one.difference.contacts)
    assert statements[1] < statements[0]  # the views (and, in the change, the clicks) skipped ingest


def test_the_isolation_keeps_no_journey_map_edges(history):
    """Each step would update its edge's row again, and a transaction never committed cannot prune
    the versions: the map (the Studio's, not the report's) is not kept, so no step walks them."""
    from django.db import transaction

    from journeys.backtest_data import isolation_create

    with transaction.atomic():
        isolation_create()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO journeys_journeymapedge (journey_id, source, target, runs) "
                "VALUES ('bt-demo', '', 'send:x', 1)"
            )
            cursor.execute("SELECT count(*) FROM journeys_journeymapedge")
            assert cursor.fetchone()[0] == 0
        transaction.set_rollback(True)
    report, _ = backtest()
    assert report["current"]["sends"]["activation/welcome"] == 5


# --- a realistic mix: the whole report, kept as it was -------------------------------------------

MIX = """
from journeys.definition import define_journey
from journeys.durations import days, hours
from journeys.send import send_email
from journeys.shipped.constants import Templates


@define_journey(id="bt-mix", name="Backtest mix", trigger="bt.signup", exit_on=["bt.churned"])
async def bt_mix(user, ctx):
    await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)
    activated = await ctx.wait_for_event("bt.activated", timeout=days(3), label="await-activation")
    if activated.timed_out:
        await send_email(to=user.email, template=Templates.ACTIVATION_NUDGE)
        await send_email(to=user.email, template=Templates.ACTIVATION_ADVANCED)
        return
    await ctx.sleep(hours(20), label="after-activation")
    if (await ctx.history.has_event(user.id, "bt.used")).found:
        await send_email(to=user.email, template=Templates.ACTIVATION_ADVANCED)


JOURNEYS = [bt_mix]
"""
MIX_GOLDEN = Path(__file__).with_name("backtest_mix_report.json")
MIX_POLICY = {
    "HOGSEND_QUIET_HOURS": {"*": ("22:00", "07:00")},
    "HOGSEND_FREQUENCY_CAPS": {"journey": [(1, "12h")]},
}


def _mix_record(contacts: int = 90) -> None:
    """What bin/backtest-bench seeds, by hand and from a fixed seed: per contact a signup, an
    activation for 60 %, two uses, a churn for 20 %; a few unsubscribe in the ledger, some are in
    other time zones (quiet hours), a few signed up again (the entry limit), and the caps and quiet
    hours of MIX_POLICY hold and skip some of the sends."""
    import random

    rng = random.Random(19)
    zones = ["UTC", "America/New_York", "Asia/Tokyo", "Europe/Berlin"]
    for n in range(contacts):
        user = f"m{n:03d}"
        signup = at(0, 0) + timedelta(minutes=rng.randrange(20 * 24 * 60))
        Contact.objects.create(
            user_id=user, email=f"{user}@example.com", properties={"timezone": zones[n % len(zones)]}
        )
        record(user, "bt.signup", signup)
        if rng.random() < 0.6:
            record(user, "bt.activated", signup + timedelta(minutes=rng.randrange(90 * 60)))
        for _ in range(2):
            record(user, "bt.used", signup + timedelta(minutes=rng.randrange(120 * 60)))
        if rng.random() < 0.2:
            record(user, "bt.churned", signup + timedelta(minutes=rng.randrange(200 * 60)))
        if n % 11 == 3:
            record(user, "bt.signup", signup + timedelta(days=2, minutes=rng.randrange(600)))
        if n % 17 == 5:
            consent(user, ConsentChange.Kind.UNSUBSCRIBED, signup + timedelta(hours=rng.randrange(72)))


@pytest.fixture
def mix(tmp_path, monkeypatch, journey_register):
    (tmp_path / "bt_mix.py").write_text(textwrap.dedent(MIX))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bt_mix", None)
    journey_register(*importlib.import_module("bt_mix").JOURNEYS)
    yield registry.get("bt-mix")
    sys.modules.pop("bt_mix", None)


def _mix_report(journey, **options) -> dict:
    from django.test import override_settings

    from journeys.backtest import journey_backtest

    with override_settings(**MIX_POLICY):
        report = journey_backtest(
            journey=journey,
            since=datetime(2026, 3, 1, tzinfo=UTC),
            until=datetime(2026, 3, 31, tzinfo=UTC),
            **options,
        )
    return json.loads(json.dumps(_comparable(report)))


def test_a_realistic_mix_gives_the_report_it_always_gave(db, mix):
    """The whole report (every count, and every contact's emails with their moments) of a mix
    like the benchmark's, with quiet hours and a frequency cap, as the replay gave it before it
    was made faster: what speeds the replay up must not change what it says. The file was written
    by this test's replay as the backtest first shipped; it changes only with the report."""
    _mix_record()
    found = _mix_report(mix)
    assert found == json.loads(MIX_GOLDEN.read_text())
    current = found["current"]
    assert current["policy"].get("frequency_capped")
    held = [at for sends in found["sequences"][0].values() for _, at in sends if at[11:16] in ("07:00",)]
    assert held  # sent when the quiet hours ended
    assert current["not_sent"].get("suppressed:unsubscribed") and current["exits"] and current["skipped"]


TEMP_TABLES = "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'"


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_isolation_made_ahead_gives_the_same_report_and_goes(mix):
    """Outside a transaction (the command's case) the isolation's tables are made and committed
    before the replay's transaction: the report is the one it always was, and the tables are gone
    afterwards."""
    _mix_record()
    assert not connection.in_atomic_block
    assert _mix_report(mix, workers=1) == json.loads(MIX_GOLDEN.read_text())
    with connection.cursor() as cursor:
        cursor.execute(TEMP_TABLES)
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT current_schema()")
        assert cursor.fetchone()[0] == "public"


@pytest.mark.django_db(transaction=True)
def test_the_replays_transaction_creates_nothing_when_the_isolation_is_made_ahead():
    """Every savepoint's end in PostgreSQL walks what its transaction created; made ahead, the
    isolation leaves the replay's transaction nothing to walk: entering it writes nothing at all
    (no transaction id is even assigned), and it still shadows the real tables."""
    from django.db import transaction

    from journeys.backtest_data import isolation_ahead, isolation_create

    with isolation_ahead() as ahead:
        assert ahead is not None and "contacts_contact" in ahead.tables
        with transaction.atomic(), connection.cursor() as cursor:
            isolation = isolation_create(ahead)
            cursor.execute("SELECT pg_current_xact_id_if_assigned()")
            assert cursor.fetchone()[0] is None
            cursor.execute(
                "SELECT c.relpersistence FROM pg_class c WHERE c.oid = 'contacts_contact'::regclass"
            )
            assert cursor.fetchone()[0] == "t"
            assert isolation == ahead
            transaction.set_rollback(True)
    with connection.cursor() as cursor:
        cursor.execute(TEMP_TABLES)
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()")
        assert cursor.fetchone()[0] == 0  # the map's trigger function goes with the tables
    with transaction.atomic(), isolation_ahead() as inside:
        assert inside is None  # a transaction of its own cannot be committed in one already open


@pytest.mark.django_db(transaction=True)
def test_the_mix_replayed_by_two_workers_gives_the_same_report(mix):
    """Two processes, each replaying a share of the contacts in an isolation of its own: their
    reports added up are the report of one."""
    _mix_record(contacts=40)
    one = _mix_report(mix, workers=1)
    two = _mix_report(mix, workers=2)
    assert two == one
    assert one["contacts"] == 40 and one["current"]["sends"]


@pytest.mark.django_db(transaction=True)
def test_the_workers_run_no_after_fork_hook_of_the_parent(mix):
    """A library's after-fork hook (kombu's closes inherited Redis channels, and hangs on one
    left in BRPOP) must not run in a worker: here one that kills the process at once."""
    from multiprocessing.util import register_after_fork

    class Holder:
        pass

    holder = Holder()
    register_after_fork(holder, lambda _: os._exit(3))
    _mix_record(contacts=10)
    assert _mix_report(mix, workers=2) == _mix_report(mix, workers=1)
    del holder


@pytest.mark.django_db(transaction=True)
def test_each_worker_has_a_connection_of_its_own_while_an_event_loop_runs(monkeypatch):
    """While an event loop runs in the thread (a session-wide Playwright browser keeps one), the
    parent's wrappers live apart from those it opened before; a worker, seeing no loop, must not
    pick up one of those still open: two workers on one socket read each other's replies."""
    import asyncio

    from journeys import backtest

    def backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def replay_share(*, share, progress, on_total, **_):
        on_total(0)
        return backend_pid()

    before_the_loop = backend_pid()  # a connection left open in the thread's own store
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    monkeypatch.setattr(backtest, "_replay_share", replay_share)
    previous = asyncio.events._get_running_loop()  # a session-wide browser's, if one runs
    loop = asyncio.new_event_loop()
    asyncio.events._set_running_loop(loop)
    try:
        pids = backtest._replay_in_workers(2, progress=lambda n: None, on_total=None)
    finally:
        asyncio.events._set_running_loop(previous)
        loop.close()
    assert len({before_the_loop, *pids}) == 3


def test_inside_a_transaction_one_process_replays(db, mix):
    """What the caller's transaction holds is visible to its connection alone."""
    from django.db import connection

    from journeys.backtest import _worker_count
    from journeys.backtest_data import Window

    window = Window(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 3, 31, tzinfo=UTC))
    assert connection.in_atomic_block
    assert _worker_count(4, journey=mix, window=window, limit=None) == 1


TRIGGERS_ANOTHER = """
from journeys.definition import define_journey
from journeys.send import send_email
from journeys.shipped.constants import Templates


@define_journey(id="bt-refer", name="Backtest referral", trigger="bt.referred", entry_limit="unlimited")
async def bt_refer(user, ctx):
    await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)
    if user.properties.get("friend"):
        await ctx.trigger("bt.referred", user_id=user.properties["friend"])


JOURNEYS = [bt_refer]
"""


@pytest.mark.django_db(transaction=True)
def test_a_journey_that_triggers_for_another_contact_is_replayed_by_one_process(
    tmp_path, monkeypatch, journey_register
):
    """A run that ingests an event for a contact its share does not hold (another share's, or a
    new one) makes the shares dependent: the replay is done again by one process, which gives the
    one-process report."""
    (tmp_path / "bt_refer.py").write_text(textwrap.dedent(TRIGGERS_ANOTHER))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bt_refer", None)
    journey = journey_register(*importlib.import_module("bt_refer").JOURNEYS)
    for n in range(12):
        friend = {"friend": f"r{(n + 5) % 12:02d}"} if n % 3 == 0 else {}
        record(f"r{n:02d}", "bt.referred", at(n, 9), **friend)
    from journeys.backtest import journey_backtest

    window = {"since": datetime(2026, 3, 1, tzinfo=UTC), "until": datetime(2026, 3, 31, tzinfo=UTC)}
    one = journey_backtest(journey=journey, workers=1, **window)
    two = journey_backtest(journey=journey, workers=2, **window)
    assert _comparable(two) == _comparable(one)
    assert one.current.sends == {"activation/welcome": 16}
    assert two.workers == 1  # a referral crossed from one share to the other
    sys.modules.pop("bt_refer", None)


def test_deferred_savepoints_undo_and_keep_what_savepoints_do(db):
    """A savepoint rides with the next statement: what a failed block did is undone, what the
    others did is kept, and a block in which nothing ran costs no round trip at all."""
    from django.db import IntegrityError, transaction
    from django.test.utils import CaptureQueriesContext

    from journeys.backtest_savepoints import deferred_savepoints

    with (
        transaction.atomic(),
        deferred_savepoints() as deferred,
        CaptureQueriesContext(connection) as cursors,
    ):
        Contact.objects.create(user_id="kept")
        with pytest.raises(IntegrityError), transaction.atomic():
            Contact.objects.create(user_id="undone")
            Contact.objects.create(user_id="kept")  # the user id is taken: the block is undone
        with transaction.atomic():
            pass
        with transaction.atomic():
            Contact.objects.filter(user_id="kept").update(email="kept@example.com")
        found = list(Contact.objects.values_list("user_id", "email"))
    assert found == [("kept", "kept@example.com")]
    # create, SAVEPOINT, create, create, ROLLBACK TO, RELEASE, SAVEPOINT, RELEASE, SAVEPOINT,
    # update, RELEASE, select: twelve statements; the savepoints went with the statements after
    # them, and the empty block's pair was never sent.
    assert (deferred.statements, deferred.round_trips) == (12, 6)
    # Held back without a cursor made for them: only the rollback to a savepoint already sent ran
    # through one.
    alone = re.compile(r'^(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT) "\w+"$')
    through_a_cursor = [q["sql"].split(" ")[0] for q in cursors.captured_queries if alone.match(q["sql"])]
    assert through_a_cursor == ["ROLLBACK"]
    with transaction.atomic(), deferred_savepoints() as deferred:
        with pytest.raises(ValueError), transaction.atomic():  # undone before anything ran
            raise ValueError
        assert Contact.objects.count() == 1
    assert (deferred.statements, deferred.round_trips) == (4, 1)


def test_the_isolation_is_the_sessions_temporary_schema(db):
    """Temporary tables: the process's local buffers and no WAL; they shadow the real tables by
    the search path and go with the rollback."""
    from django.db import transaction

    from journeys.backtest_data import isolation_create

    temp_tables = "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'"
    with transaction.atomic():
        isolation = isolation_create()
        with connection.cursor() as cursor:
            cursor.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
            assert isolation.schema == cursor.fetchone()[0]
            cursor.execute(
                "SELECT c.relpersistence, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = 'contacts_contact'::regclass"
            )
            assert cursor.fetchone() == ("t", isolation.schema)
            cursor.execute(temp_tables)
            assert cursor.fetchone()[0] > 1
        transaction.set_rollback(True)
    with connection.cursor() as cursor:
        cursor.execute(temp_tables)
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT current_schema()")
        assert cursor.fetchone()[0] == "public"


def test_a_run_end_is_announced_as_an_event_only_when_the_journey_reads_it(monkeypatch):
    """With the journey alone and the destinations silent, nothing but the journey could read its
    runs' `journey.completed`; the map's edges are not kept either."""
    from journeys import services
    from journeys.backtest import _run_ends_as_read

    announced, mapped = [], []
    monkeypatch.setattr(services, "run_end_announce", lambda **kw: announced.append(kw["status"]))
    monkeypatch.setattr(services, "map_end", lambda **kw: mapped.append(kw["status"]))
    original = services.run_end_announce
    with _run_ends_as_read({"bt.started", "journey.failed"}):
        services.run_end_announce(run_id=1, status="completed")
        services.run_end_announce(run_id=1, status="failed")
        services.map_end(run_id=1, status="completed", reason="")
    assert announced == ["failed"] and mapped == []
    assert services.run_end_announce is original
    services.map_end(run_id=1, status="completed")
    assert mapped == ["completed"]


def test_savepoints_left_out_cost_nothing_until_one_must_undo_something(db):
    """With `elide`, no savepoint is sent: a block that succeeds, or fails with nothing run inside
    it, needs none; the first that must undo a statement raises SavepointsNeeded, and so does
    every statement after it, for the caller to roll back and replay with them sent."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from journeys.backtest_savepoints import SavepointsNeeded, deferred_savepoints

    with (
        transaction.atomic(),
        deferred_savepoints(elide=True) as deferred,
        CaptureQueriesContext(connection) as cursors,
    ):
        Contact.objects.create(user_id="kept")
        with transaction.atomic():
            Contact.objects.filter(user_id="kept").update(email="kept@example.com")
        with pytest.raises(ValueError), transaction.atomic():  # undone before anything ran
            raise ValueError
        assert Contact.objects.count() == 1
        # create, SAVEPOINT, update, RELEASE, SAVEPOINT, ROLLBACK TO, RELEASE, count: three sent
        assert (deferred.statements, deferred.round_trips, deferred.needed) == (8, 3, False)
        with pytest.raises(SavepointsNeeded), transaction.atomic():
            Contact.objects.create(user_id="to be undone")
            raise ValueError
        assert deferred.needed
        with pytest.raises(SavepointsNeeded):
            Contact.objects.count()
    assert not [
        q for q in cursors.captured_queries if re.match(r"(SAVEPOINT|RELEASE|ROLLBACK)", q["sql"] or "")
    ]


FAILING = """
from journeys.definition import define_journey
from journeys.durations import days
from journeys.send import send_email
from journeys.shipped.constants import Templates


@define_journey(id="bt-failing", name="Backtest failing", trigger="bt.started")
async def bt_failing(user, ctx):
    await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)
    await ctx.sleep(days(1), label="a-day")
    await send_email(to=user.email, template=Templates.ACTIVATION_NUDGE)
    # PostgreSQL refuses a NUL in jsonb: for these contacts the ingest fails in the database, and
    # its savepoint must undo what it wrote before (the nudge's step record is written with it)
    note = "a\\x00b" if user.id.startswith("x") else "ok"
    await ctx.trigger("bt.noted", properties={"note": note})
    await send_email(to=user.email, template=Templates.ACTIVATION_ADVANCED)


JOURNEYS = [bt_failing]
"""


@pytest.fixture
def failing(db, tmp_path, monkeypatch, journey_register):
    (tmp_path / "bt_failing.py").write_text(textwrap.dedent(FAILING))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bt_failing", None)
    journey_register(*importlib.import_module("bt_failing").JOURNEYS)
    for n, user in enumerate(["ann", "xavier", "ben", "xena", "cat"]):
        record(user, "bt.started", at(0, 9 + n))
    yield registry.get("bt-failing")
    sys.modules.pop("bt_failing", None)


def test_a_run_that_fails_mid_step_is_replayed_again_with_savepoints_and_reports_the_same(
    failing, monkeypatch
):
    """An ingest that PostgreSQL refuses must be undone to its savepoint: the replay without
    savepoints stops there and the version is replayed again with them sent, so the report is the
    one a replay with savepoints throughout gives, and the progress bar ends at the events
    replayed."""
    from journeys import backtest
    from journeys.backtest_savepoints import deferred_savepoints

    window = {"since": datetime(2026, 3, 1, tzinfo=UTC), "until": datetime(2026, 3, 31, tzinfo=UTC)}
    told: list[int] = []
    report = backtest.journey_backtest(journey=failing, workers=1, progress=told.append, **window)
    assert report.replayed_again == 1
    assert sum(told) == report.events == 5 and min(told) < 0  # the first attempt's events taken back
    # Sent once each (none counted twice by the first attempt), the nudge kept where the ingest
    # after it failed; the two failed runs never got the last email.
    assert report.current.sends == {
        "activation/nudge": 5,
        "activation/welcome": 5,
        "activation/advanced": 3,
    }
    assert sum(report.current.failures.values()) == 2
    monkeypatch.setattr(backtest, "deferred_savepoints", lambda elide: deferred_savepoints(elide=False))
    throughout = backtest.journey_backtest(journey=failing, workers=1, **window)
    assert throughout.replayed_again == 0
    assert _comparable(report) == _comparable(throughout)


def test_a_replay_that_undoes_nothing_sends_no_savepoint_of_its_own(history):
    """Every block of the replay succeeds: the savepoints it would nest (each step, send,
    enrollment, ingest) are never sent, only the one each version is replayed in."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        report, _ = backtest()
    assert report["events"] == 10
    sent = [q["sql"] for q in captured.captured_queries]
    version = max(i for i, sql in enumerate(sent) if sql.startswith("SAVEPOINT"))
    end = sent.index(sent[version].replace("SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
    replay = sent[version + 1 : end]
    assert len(replay) > 50
    assert not [sql for sql in replay if re.match(r"(SAVEPOINT|RELEASE|ROLLBACK)", sql)]
