"""Segments at scale, in a database of its own; prints each figure beside its goal.

    bin/bench-segments                                   # 1,000,000 contacts, 10,000,000 events
    bin/bench-segments --contacts 100000 --events 1000000 --rounds 5

1. Live membership: the CPU one ingested event costs with 20 segments defined (properties,
   consent, event history, segments of segments) minus what the same events cost with none —
   this process's CPU (time.process_time) plus its PostgreSQL backend's (from /proc) — in
   alternating rounds of one run (without, with, without, with …), printed as the median of the
   pairs' differences with its spread (goal ≤ 1 ms per event). The stream is mostly events no
   segment reads (`LIVE_MIX`); ingest keeps its default dispatcher, as in production.
2. A full re-evaluation of one segment (`feature.used` at least 3 times in 7 days, on the Pro
   plan) over every contact and event: the first population, then a re-evaluation that finds
   nothing to change (goal ≤ 60 s).
Contacts and events are seeded in SQL (generate_series), not through the API.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAMES = [
    "feature.used",
    "session.started",
    "page.viewed",
    "checkout.completed",
    "invite.sent",
    "report.exported",
    "login.succeeded",
    "settings.changed",
    "file.uploaded",
    "comment.added",
]


def twenty_segments():
    from audiences.segments import define_segment
    from journeys.durations import days

    s = [
        define_segment("b-pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")),
        define_segment("b-team", name="Team", where=lambda b: b.prop("plan").eq("team")),
        define_segment("b-big", name="Big", where=lambda b: b.prop("seats").gte(10)),
        define_segment("b-eu", name="EU", where=lambda b: b.prop("region").eq("eu")),
        define_segment("b-subscribed", name="Subscribed", where=lambda b: b.subscribed() & ~b.suppressed()),
        define_segment("b-tips", name="Tips", where=lambda b: b.accepts("tips")),
        define_segment(
            "b-power", name="Power", where=lambda b: b.event("feature.used").at_least(3, within=days(7))
        ),
        define_segment("b-heavy", name="Heavy", where=lambda b: b.event("feature.used").at_least(20)),
        define_segment(
            "b-never-bought", name="Never bought", where=lambda b: b.event("checkout.completed").never()
        ),
        define_segment(
            "b-buyer", name="Buyer", where=lambda b: b.event("checkout.completed").ever(within=days(30))
        ),
        define_segment(
            "b-dormant", name="Dormant", where=lambda b: b.event("session.started").last_more_than(days(14))
        ),
        define_segment(
            "b-active", name="Active", where=lambda b: b.event("session.started").last_within(days(1))
        ),
        define_segment("b-inviter", name="Inviter", where=lambda b: b.event("invite.sent").at_least(2)),
        define_segment(
            "b-exporter",
            name="Exporter",
            where=lambda b: b.event("report.exported", where=lambda e: e.prop("format").eq("csv")).ever(),
        ),
        define_segment(
            "b-uploader",
            name="Uploader",
            where=lambda b: b.event("file.uploaded").at_least(5, within=days(30)),
        ),
        define_segment("b-commenter", name="Commenter", where=lambda b: b.event("comment.added").ever()),
        define_segment(
            "b-pro-power", name="Pro power", where=lambda b: b.in_segment("b-pro") & b.in_segment("b-power")
        ),
        define_segment(
            "b-winback",
            name="Win-back",
            where=lambda b: b.in_segment("b-dormant") & b.in_segment("b-subscribed"),
        ),
        define_segment(
            "b-upsell",
            name="Upsell",
            where=lambda b: b.in_segment("b-team") & b.in_segment("b-big") & b.subscribed(),
        ),
        define_segment(
            "b-trial-nudge",
            name="Trial nudge",
            where=lambda b: b.prop("plan").eq("free") & b.event("feature.used").fewer_than(2, within=days(7)),
        ),
    ]
    assert len(s) == 20
    return s


def seed(cursor, *, contacts: int, events: int) -> None:
    started = time.monotonic()
    cursor.execute("ALTER TABLE contacts_event SET (autovacuum_enabled = false)")
    cursor.execute(
        """
INSERT INTO contacts_contact (id, user_id, email, properties, category_opt_outs, category_opt_ins,
    confirmation_required, created_at, updated_at, unsubscribed_at)
SELECT gen_random_uuid(), 'user-' || i, 'user' || i || '@example.com',
       jsonb_build_object('plan', (ARRAY['free','pro','team'])[i %% 3 + 1], 'seats', i %% 20,
                          'region', (ARRAY['eu','us','apac'])[i %% 3 + 1]),
       '{}', CASE WHEN i %% 4 = 0 THEN ARRAY['tips'] ELSE '{}' END, false, now(), now(),
       CASE WHEN i %% 50 = 0 THEN now() END
FROM generate_series(1, %s) i
""",
        [contacts],
    )
    cursor.execute(
        "CREATE TEMP TABLE bench_ids AS SELECT (substr(user_id, 6))::bigint AS n, id FROM contacts_contact"
    )
    cursor.execute("CREATE UNIQUE INDEX ON bench_ids (n)")
    cursor.execute("ANALYZE bench_ids")
    print(f"  {contacts:,} contacts in {time.monotonic() - started:.1f} s", flush=True)
    # Event rows in slices: skewed towards low-numbered contacts (some heavy users, many light),
    # ten names, over the last 60 days.
    started = time.monotonic()
    # Without its secondary indexes and constraints while it fills (rebuilt below): index
    # maintenance row by row is the slowest part of a seed, and not what is measured.
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = 'contacts_event'::regclass AND contype IN ('u', 'f') ORDER BY contype DESC"
    )
    constraints = cursor.fetchall()
    for name, _, _ in sorted(constraints, key=lambda c: c[2] != "f"):
        cursor.execute(f'ALTER TABLE contacts_event DROP CONSTRAINT "{name}"')
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'contacts_event' "
        "AND indexname <> 'contacts_event_pkey' AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = 'contacts_event'::regclass)"
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    step = 1_000_000
    for offset in range(0, events, step):
        cursor.execute(
            """
INSERT INTO contacts_event (id, contact_id, name, properties, occurred_at, received_at, source,
    dispatch_state, dispatch_attempts, exited_run_ids, redispatches, tasks_done)
SELECT gen_random_uuid(), b.id, (%s::text[])[1 + (s.g * 7) %% 10],
       CASE WHEN s.g %% 10 = 5 THEN '{"format": "csv"}'::jsonb ELSE '{}'::jsonb END,
       now() - random() * interval '60 days', now(), 'api', 'skipped', 0, '{}', 0, '{}'
FROM (SELECT g, 1 + floor(%s * power(random(), 3))::bigint AS n FROM generate_series(%s, %s) g) s
JOIN bench_ids b ON b.n = s.n
""",
            [NAMES, contacts, offset + 1, min(offset + step, events)],
        )
        print(f"  {min(offset + step, events):,} events …", flush=True)
    print(f"  {events:,} events in {time.monotonic() - started:.1f} s", flush=True)
    started = time.monotonic()
    cursor.execute("SET maintenance_work_mem = '512MB'")
    for name, definition, _ in sorted(constraints, key=lambda c: c[2] == "f"):
        cursor.execute(f'ALTER TABLE contacts_event ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        cursor.execute(
            definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1).replace(
                "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX IF NOT EXISTS", 1
            )
        )
    print(f"  indexes and constraints rebuilt in {time.monotonic() - started:.1f} s", flush=True)
    started = time.monotonic()
    cursor.execute("VACUUM ANALYZE contacts_contact")
    cursor.execute("VACUUM ANALYZE contacts_event")
    print(f"  vacuum analyze in {time.monotonic() - started:.1f} s", flush=True)


def populate(segment) -> None:
    """A segment's members written in one INSERT … SELECT of its compiled condition (setup, not
    measured: the first population a refresh makes, without its chunked locking and re-checks)."""
    from django.db import connection
    from django.utils import timezone

    from audiences.conditions import bind_now
    from audiences.models import SegmentMembership, SegmentState

    now = timezone.now()
    SegmentMembership.objects.filter(segment_id=segment.id).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audiences_segmentmembership (segment_id, contact_id, entered_at) "
            f"SELECT %s, c.id, %s FROM contacts_contact c WHERE c.erased_at IS NULL AND ({segment.sql_text})",
            [segment.id, now, *bind_now(list(segment.sql_params), now)],
        )
        size = cursor.rowcount
    SegmentState.objects.update_or_create(
        segment_id=segment.id,
        defaults={"populated_at": now, "refreshed_at": now, "size": size, "definition": segment.sql_text},
    )


def backend_cpu(cursor) -> float:
    from bench.cpu import _own_stat

    cursor.execute("SELECT pg_backend_pid()")
    return _own_stat(cursor.fetchone()[0]) or 0.0


# The live stream: what a product sends, most of it page views and logins no segment reads; of
# the events a segment does read, most change no one's membership. (The seeded history is the
# ten names evenly; this is the mix of the events ingested while measuring.)
LIVE_MIX = {
    "page.viewed": 35,
    "login.succeeded": 10,
    "settings.changed": 5,
    "feature.used": 20,
    "session.started": 15,
    "report.exported": 4,
    "file.uploaded": 4,
    "comment.added": 4,
    "invite.sent": 2,
    "checkout.completed": 1,
}


def live_stream(*, users: list[str], events: int, seed: float) -> list[dict]:
    """`events` ingests as `POST /v1/events` makes them, the same for a given seed: one in a
    hundred also changes the contact's plan (a property segments read)."""
    rng = random.Random(seed)
    names, weights = list(LIVE_MIX), list(LIVE_MIX.values())
    stream = []
    for _ in range(events):
        name = rng.choices(names, weights)[0]
        stream.append(
            {
                "name": name,
                "user_id": rng.choice(users),
                "properties": {"format": "csv"} if name == "report.exported" and rng.random() < 0.5 else {},
                "contact_properties": {"plan": rng.choice(["free", "pro", "team"])}
                if rng.random() < 0.01
                else {},
            }
        )
    return stream


def live_round(stream: list[dict]) -> tuple[float, float]:
    """(process CPU s, its PostgreSQL backend's CPU s) ingesting this stream, one event a call."""
    from django.db import connection

    from contacts.ingest import event_ingest

    with connection.cursor() as cursor:
        db_before = backend_cpu(cursor)
    py_before = time.process_time()
    for event in stream:
        event_ingest(**event)
    py = time.process_time() - py_before
    with connection.cursor() as cursor:
        db = backend_cpu(cursor) - db_before
    return py, db


def catch_up(stream: list[dict], segments) -> None:
    """After a round without segments: bring the contacts it touched up to date, unmeasured, so
    the next round with segments pays for its own events only, as a live system would."""
    from django.db import transaction

    from audiences.membership import contacts_lock, memberships_apply
    from contacts.models import Contact

    ids = list(
        Contact.objects.filter(user_id__in={e["user_id"] for e in stream}).values_list("id", flat=True)
    )
    with transaction.atomic():
        locked = contacts_lock(ids)
        memberships_apply(pairs={s.id: set(locked) for s in segments})


def quartiles(values: list[float]) -> tuple[float, float, float]:
    import statistics

    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--live-events", type=int, default=1000, help="ingested events per measured round")
    parser.add_argument("--rounds", type=int, default=9, help="measured pairs of rounds (without, with)")
    parser.add_argument("--users", type=int, default=1000, help="active users the live events come from")
    parser.add_argument("--db", default=os.environ.get("BENCH_DB", "hogsend_bench_segments"))
    parser.add_argument("--keep", action="store_true", help="reuse the seeded database if it exists")
    parser.add_argument("--skip-live", action="store_true", help="only the full re-evaluation")
    args = parser.parse_args()

    server = f"postgres://hogsend@127.0.0.1:{os.environ.get('HOGSEND_PG_PORT', '54329')}"
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.db]).fetchone()
        fresh = not (args.keep and exists)
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db}"')
            conn.execute(f'CREATE DATABASE "{args.db}"')
    os.environ["DATABASE_URL"] = f"{server}/{args.db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hogsend.settings")
    os.environ["HOGSEND_SEGMENT_MODULES"] = ""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from audiences.models import SegmentMembership, SegmentState
    from audiences.segments import registry
    from audiences.services import segment_refresh

    call_command("migrate", verbosity=0)
    if fresh:
        print(f"seeding {args.contacts:,} contacts and {args.events:,} events:", flush=True)
        with connection.cursor() as cursor:
            seed(cursor, contacts=args.contacts, events=args.events)

    # --- 2. a full re-evaluation -----------------------------------------------------------------
    from audiences.segments import define_segment
    from journeys.durations import days

    target = define_segment(
        "bench-pro-power",
        name="Pro power users",
        where=lambda b: b.prop("plan").eq("pro") & b.event("feature.used").at_least(3, within=days(7)),
    )
    registry.replace([target])
    SegmentMembership.objects.filter(segment_id=target.id).delete()
    SegmentState.objects.filter(segment_id=target.id).delete()
    first = segment_refresh(target.id)
    print(f"  first population: {first.entered:,} members in {first.seconds:.1f} s", flush=True)
    again = segment_refresh(target.id)
    print(f"  again, nothing to change: {again.seconds:.1f} s", flush=True)
    if args.skip_live:
        return

    # --- 1. live membership on ingest --------------------------------------------------------------
    registry.replace(twenty_segments())
    print("populating the 20 segments …", flush=True)
    started = time.monotonic()
    for segment in registry.in_dependency_order():
        populate(segment)
    print(f"  in {time.monotonic() - started:.1f} s", flush=True)
    segments = registry.all()
    # A pool of active users, brought to a steady state first (their first events of the day move
    # them into "active" and out of "dormant"; what is measured is the ongoing cost).
    rng = random.Random(42)
    users = [f"user-{rng.randint(1, args.contacts)}" for _ in range(min(args.contacts, args.users))]
    print(f"warming up {len(users):,} active users …", flush=True)
    live_round(live_stream(users=users, events=len(users) * 3, seed=1))
    # The same workload without segments and with them, in alternating rounds of one run (each
    # pair ingests one stream twice), so both see the same machine, tables and caches; the figure
    # is the median of the pairs' differences. Ingest keeps its default dispatcher (the NOTIFY
    # that wakes the relay), as in production: an event nothing else reads is one statement.
    added, added_py, added_db, off_ms, on_ms, emitted = [], [], [], [], [], 0
    for round_number in range(args.rounds + 1):
        stream = live_stream(users=users, events=args.live_events, seed=rng.random())
        registry.replace([])
        off_py, off_db = live_round(stream)
        registry.replace(segments)
        catch_up(stream, segments)
        before = _segment_events()
        on_py, on_db = live_round(stream)
        if round_number == 0:  # the first pair warms statements and caches up: not counted
            continue
        emitted += _segment_events() - before
        n = len(stream)
        added_py.append((on_py - off_py) / n * 1000)
        added_db.append((on_db - off_db) / n * 1000)
        added.append(added_py[-1] + added_db[-1])
        off_ms.append((off_py + off_db) / n * 1000)
        on_ms.append((on_py + on_db) / n * 1000)
        print(
            f"  pair {round_number}: without {off_ms[-1]:.3f} ms, with {on_ms[-1]:.3f} ms per event"
            f" -> added {added[-1]:.3f} ms",
            flush=True,
        )
    n = args.live_events * args.rounds
    read = sum(w for name, w in LIVE_MIX.items() if registry.reads_event(name)) / sum(LIVE_MIX.values())
    q1, median, q3 = quartiles(added)
    import statistics

    print()
    print(f"segments benchmark: {args.contacts:,} contacts, {args.events:,} events")
    print(
        f"  full re-evaluation, first population ({first.entered:,} members)   {first.seconds:7.1f} s   goal ≤ 60 s"
    )
    print(
        f"  full re-evaluation, nothing to change ({again.size:,} members)  {again.seconds:7.1f} s   goal ≤ 60 s"
    )
    print(
        f"  live membership, 20 segments: CPU added per ingested event   {median:7.3f} ms  goal ≤ 1 ms"
        f"   (median of {len(added)} pairs of {args.live_events:,} events; quartiles {q1:.3f} to {q3:.3f},"
        f" range {min(added):.3f} to {max(added):.3f} ms)"
    )
    print(
        f"    process {statistics.median(added_py):.3f} ms + PostgreSQL {statistics.median(added_db):.3f} ms;"
        f" per event without segments {statistics.median(off_ms):.3f} ms, with {statistics.median(on_ms):.3f} ms"
    )
    print(
        f"    the stream: {read:.0%} of events of a name some segment reads, 1% change the plan;"
        f" {emitted / n:.3f} segment events emitted per ingested event ({emitted:,} in {n:,})"
    )


def _segment_events() -> int:
    from contacts.models import Event

    return Event.objects.filter(name__in=["segment.entered", "segment.exited"]).count()


if __name__ == "__main__":
    main()
