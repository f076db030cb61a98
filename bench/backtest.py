"""Backtest speed: seed a month of recorded events set-based, replay them, print the figures.

Run by `bin/backtest-bench` (a database of its own); by hand:

    DATABASE_URL=postgres://hogsend@127.0.0.1:54329/hogsend_backtest_bench \
        HOGSEND_JOURNEY_MODULES=journeys.shipped,bench.journeys \
        DJANGO_SETTINGS_MODULE=bench.settings .venv/bin/python -m bench.backtest --events 100000

The journey is `bench-backtest` (bench/journeys.py): a welcome, a three-day wait for activation,
a nudge or a sleep, a history read and a last email; `exit_on` churn. Per contact the history
holds a signup, an activation for 60 %, two uses of the product and a churn for 20 % (3.8 events
on average, every one of a name the journey reads), and 2 % unsubscribe in the consent ledger.
The goal: 100,000 events replayed in at most two minutes on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import django

GOAL_SECONDS_PER_100K = 120.0
GOAL_EVENTS_PER_SECOND = 100_000 / GOAL_SECONDS_PER_100K  # 833
CORES = 2  # the development machine's: the goal's CPU budget per event is CORES / that rate
EVENTS_PER_CONTACT = 3.8
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=30)

_SEED_SQL = """
SELECT setseed(0.42);
INSERT INTO contacts_contact (id, user_id, email, properties, category_opt_outs, category_opt_ins,
                              confirmation_required, created_at, updated_at)
SELECT gen_random_uuid(), 'bt-' || g, 'bt-' || g || '@example.com', '{}', '{}', '{}', false, %(since)s, %(since)s
FROM generate_series(1, %(contacts)s) g;

CREATE TEMP TABLE seed_signup AS
SELECT c.id AS contact_id, %(since)s::timestamptz
       + (row_number() OVER (ORDER BY c.user_id) - 1) * interval '25 days' / %(contacts)s AS at
FROM contacts_contact c WHERE c.user_id LIKE 'bt-%%';

CREATE TEMP TABLE seed_events AS
SELECT contact_id, 'bench.signup' AS name, at FROM seed_signup
UNION ALL SELECT contact_id, 'bench.activated', at + random() * interval '90 hours' FROM seed_signup
    WHERE random() < 0.6
UNION ALL SELECT contact_id, 'bench.used', at + random() * interval '120 hours' FROM seed_signup
UNION ALL SELECT contact_id, 'bench.used', at + random() * interval '120 hours' FROM seed_signup
UNION ALL SELECT contact_id, 'bench.churned', at + random() * interval '200 hours' FROM seed_signup
    WHERE random() < 0.2;

INSERT INTO contacts_event (id, contact_id, name, properties, occurred_at, received_at, idempotency_key,
                            source, dispatch_state, dispatch_attempts, exited_run_ids, redispatches, tasks_done)
SELECT gen_random_uuid(), contact_id, name, '{}', at, at, NULL, 'api', 'dispatched', 0, '{}', 0, '{}'
FROM seed_events;

CREATE TEMP TABLE seed_unsubscribes AS
SELECT contact_id, at + random() * interval '72 hours' AS at FROM seed_signup WHERE random() < 0.02;
UPDATE contacts_contact c SET unsubscribed_at = u.at FROM seed_unsubscribes u WHERE u.contact_id = c.id;
INSERT INTO contacts_consentchange (contact_id, email, kind, category, source, actor, user_agent,
                                    token_sha256, detail, occurred_at)
SELECT u.contact_id, c.email, 'unsubscribed', '', 'one_click', '', '', '', '{}', u.at
FROM seed_unsubscribes u JOIN contacts_contact c ON c.id = u.contact_id;
ANALYZE;
"""


def seed(*, events: int) -> int:
    """Seed about `events` recorded events set-based; returns how many were stored."""
    from django.db import connection

    contacts = max(int(events / EVENTS_PER_CONTACT), 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_event")
        if cursor.fetchone()[0]:
            raise SystemExit("the benchmark database is not empty; bin/backtest-bench recreates it")
        cursor.execute(_SEED_SQL, {"since": SINCE, "contacts": contacts})
        cursor.execute("SELECT count(*) FROM contacts_event")
        return cursor.fetchone()[0]


FLOOR_ROUND_TRIPS = 3000


def floor_ms(postmaster: int) -> float:
    """The floor, measured beside the replay: CPU milliseconds (this process and PostgreSQL) of one
    round trip of the least prepared statement through Django's cursor. The box is shared and its
    speed swings within minutes; the replay's CPU per event divided by this holds when the
    milliseconds do not."""
    from django.db import connection

    from bench.cpu import tree_seconds
    from contacts.prepared import prepared_cursor

    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int", [0])  # connected and prepared before the clock starts
        before = tree_seconds([os.getpid()]) + tree_seconds([postmaster])
        for n in range(FLOOR_ROUND_TRIPS):
            cursor.execute("SELECT %s::int", [n])
            cursor.fetchone()
        spent = tree_seconds([os.getpid()]) + tree_seconds([postmaster]) - before
    connection.close()
    return 1000 * spent / FLOOR_ROUND_TRIPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--skip-seed", action="store_true", help="replay what an earlier run seeded")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the replay here")
    parser.add_argument("--workers", type=int, default=None, help="replay processes (default: one per core)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()

    from django.db import connection

    from bench.cpu import _stat, tree_seconds
    from journeys.backtest import journey_backtest
    from journeys.registry import registry

    if not args.skip_seed:
        started = time.perf_counter()
        stored = seed(events=args.events)
        print(f"seeded {stored} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    journey = registry.get("bench-backtest")
    if journey is None:
        raise SystemExit("bench-backtest is not defined: HOGSEND_JOURNEY_MODULES must name bench.journeys")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    # The replay's workers have backends of their own: the server's whole tree is measured (the
    # benchmark's cluster serves nothing else meanwhile).
    postmaster = (_stat(backend) or (0, 0.0))[0]
    connection.close()
    floors = [floor_ms(postmaster)]
    cpu_before, pg_before = tree_seconds([os.getpid()]), tree_seconds([postmaster])
    started = time.perf_counter()
    done = [0, 0]  # events replayed, the next to report at

    def progress(n: int) -> None:  # a line per 10,000 events, for a long run's partial figures
        done[0] += n
        if done[0] >= done[1]:
            done[1] += 10_000
            cpu_ms = 1000 * (tree_seconds([os.getpid()]) - cpu_before) / done[0]
            pg_ms = 1000 * (tree_seconds([postmaster]) - pg_before) / done[0]
            print(
                f"  … {done[0]} events in {time.perf_counter() - started:.0f} s: "
                f"{done[0] / (time.perf_counter() - started):.0f} events/s, "
                f"{cpu_ms:.2f} + {pg_ms:.2f} ms CPU per event",
                file=sys.stderr,
                flush=True,
            )

    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        report = profiler.runcall(
            journey_backtest,
            journey=journey,
            since=SINCE,
            until=UNTIL,
            progress=progress,
            workers=args.workers,
        )
        profiler.dump_stats(args.profile)
    else:
        report = journey_backtest(
            journey=journey, since=SINCE, until=UNTIL, progress=progress, workers=args.workers
        )
    wall = time.perf_counter() - started
    cpu = tree_seconds([os.getpid()]) - cpu_before
    pg = tree_seconds([postmaster]) - pg_before
    floors.append(floor_ms(postmaster))
    events = report.events
    goal = GOAL_SECONDS_PER_100K * events / 100_000
    current = report.current
    print(
        f"backtest bench-backtest: {report.contacts} contacts, {events} events, "
        f"{report.consent_changes} consent changes; enrolled {current.enrolled}, "
        f"sends {sum(current.sends.values())} ({', '.join(f'{t} {n}' for t, n in current.sends.items())})"
    )
    rate = events / wall if wall else 0.0
    process_ms, pg_ms = 1000 * cpu / max(events, 1), 1000 * pg / max(events, 1)
    budget_ms = 1000 * CORES / GOAL_EVENTS_PER_SECOND
    print(
        f"  replayed in {wall:.1f} s: {rate:.0f} events/s   "
        f"(goal: ≥ {GOAL_EVENTS_PER_SECOND:.0f} events/s, ≤ {goal:.0f} s for {events} events)"
    )
    print(
        f"  CPU per event: {process_ms:.2f} ms in the replay's processes + {pg_ms:.2f} ms in PostgreSQL "
        f"= {process_ms + pg_ms:.2f} ms   (goal's budget on {CORES} cores: ≤ {budget_ms:.2f} ms)"
    )
    print(
        f"  {report.workers} replay process(es); statements per event: "
        f"{report.statements / max(events, 1):.1f} asked, in {report.round_trips / max(events, 1):.1f} "
        "round trips to PostgreSQL"
    )
    floor = sum(floors) / len(floors)
    print(
        f"  floor, beside it: {floor:.3f} ms CPU a bare round trip ({floors[0]:.3f} before, "
        f"{floors[1]:.3f} after); an event costs {(process_ms + pg_ms) / floor:.1f} of them"
    )
    print(f"  load average: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    print(f"  {'within' if wall <= goal else 'OVER'} the goal")


if __name__ == "__main__":
    main()
