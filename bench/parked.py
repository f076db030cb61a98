"""`bin/bench --parked N`: what N runs parked in sleeps and waits cost the database side.

Seeds the product's tables set-based (contacts, their trigger events, runs of the `bench-park`
journey in `waiting`, half in a sleep and half in a wait, as the engine leaves them), then measures
ingesting the journey's exit event (`bench.leave`, which ends the contact's parked run inside the
ingest transaction) with 1,000 runs parked and with N: CPU ms per exit event (this process, which
runs ingest in-process, and the database's backends, from /proc), statements per exit event, and
the latency of each. The live-run query an exit runs is shown with EXPLAIN ANALYZE at N, so a
sequential scan is visible.

Parking through the real engine (the parking rate, runs/s reaching their first sleep, and the
wake-up p99 with N parked against none) needs the engine and a worker: `--engine N` runs
`bench.run`'s parked phase for that (`bin/bench --rounds 1 --phases parked --parked N`), printing
how many it parked in the time it had.

    python -m bench.parked [N] [--sample 200] [--engine N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.cpu import CpuMeter
from bench.run import (
    BENCH_APP_NAME,
    DB,
    DB_URL,
    PG_PORT,
    ROOT,
    load_average,
    percentiles,
    reset_database,
    say,
)

SEED_BATCH = 50_000

_SEED_SQL = """
WITH n AS (SELECT g FROM generate_series(%(start)s, %(stop)s - 1) AS g),
contacts AS (
    INSERT INTO contacts_contact
        (id, user_id, email, properties, category_opt_outs, category_opt_ins, confirmation_required,
         created_at, updated_at)
    SELECT gen_random_uuid(), 'park-' || g, 'park-' || g || '@bench.example', '{}', '{}', '{}', false,
           now(), now()
    FROM n
    RETURNING id, user_id
), triggers AS (
    INSERT INTO contacts_event
        (id, contact_id, name, properties, occurred_at, received_at, source, dispatch_state,
         dispatch_attempts, exited_run_ids)
    SELECT gen_random_uuid(), c.id, 'bench.park', '{}', now() - interval '1 hour',
           now() - interval '1 hour', 'api', 'dispatched', 1, '{}'
    FROM contacts c
    RETURNING id, contact_id
)
INSERT INTO journeys_journeyrun
    (id, journey_id, contact_id, trigger_event_id, properties, status, current_node, map_node,
     waiting_until, entered_at, exit_reason, error, version, updated_at)
SELECT gen_random_uuid(), 'bench-park', t.contact_id, t.id, '{}', 'waiting',
       CASE WHEN random() < 0.5 THEN 'parked-sleep' ELSE 'parked-wait' END, '',
       now() + interval '30 days', now() - interval '1 hour', '', '', '', now()
FROM triggers t
"""

_LIVE_RUNS_SQL = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT r.id FROM journeys_journeyrun r
LEFT JOIN contacts_event t ON t.id = r.trigger_event_id
WHERE r.contact_id = (SELECT id FROM contacts_contact WHERE user_id = %s)
  AND r.journey_id IN ('bench-park') AND r.status IN ('active', 'waiting')
  AND (t.occurred_at <= now() OR (r.trigger_event_id IS NULL AND r.entered_at <= now()))
FOR UPDATE OF r
"""


def seed(start: int, stop: int) -> float:
    """Park contacts start..stop-1; returns runs seeded per second."""
    from django.db import connection, transaction

    began = time.monotonic()
    for lo in range(start, stop, SEED_BATCH):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_SEED_SQL, {"start": lo, "stop": min(lo + SEED_BATCH, stop)})
        say(f"  seeded {min(lo + SEED_BATCH, stop)}/{stop} parked runs")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact, contacts_event, journeys_journeyrun")
    return (stop - start) / max(time.monotonic() - began, 1e-9)


def meter() -> CpuMeter:
    import psycopg

    postmaster = int((ROOT / ".run" / "pg" / "postmaster.pid").read_text().split()[0])
    sampler = psycopg.connect(
        f"postgres://hogsend@127.0.0.1:{PG_PORT}/postgres", autocommit=True, application_name=BENCH_APP_NAME
    )

    def backends() -> list[tuple[int, str]]:
        return sampler.execute(
            "SELECT pid, datname FROM pg_stat_activity WHERE datname IS NOT NULL AND pid <> pg_backend_pid()"
        ).fetchall()

    return CpuMeter(
        trees={"bench process (ingest in-process)": [os.getpid()]},
        databases={"database": DB},
        postmaster=postmaster,
        sample_sql=backends,
        own_pid=sampler.info.backend_pid,
    )


def exit_cost(users: list[int]) -> dict[str, float]:
    """Ingest one exit event for each of these parked contacts, one call each, as the API does."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contacts.ingest import event_ingest
    from journeys.models import JourneyRun

    cpu = meter()
    latencies: list[float] = []
    exited = 0
    cpu.start()
    with CaptureQueriesContext(connection) as captured:
        for i in users:
            began = time.perf_counter()
            result = event_ingest(name="bench.leave", user_id=f"park-{i}")
            latencies.append(time.perf_counter() - began)
            exited += len(result.exited_run_ids)
    spent = cpu.stop()
    statements = [q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    left = JourneyRun.objects.filter(
        contact__user_id__in=[f"park-{i}" for i in users], status__in=JourneyRun.LIVE_STATUSES
    ).count()
    p50, p99 = percentiles(latencies)
    n = max(len(users), 1)
    return {
        "exited": exited,
        "still live": left,
        "statements": len(statements) / n,
        "process ms": 1000 * spent["bench process (ingest in-process)"] / n,
        "database ms": 1000 * spent["database"] / n,
        "p50 ms": p50 * 1000,
        "p99 ms": p99 * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("parked", nargs="?", type=int, default=100_000, help="runs to park (default 100,000)")
    parser.add_argument("--sample", type=int, default=200, help="exit events measured at each size")
    parser.add_argument(
        "--engine",
        type=int,
        default=0,
        help="also park this many through the real engine (bench.run's phase)",
    )
    args = parser.parse_args(argv)
    figures: list[tuple[str, str, str]] = []

    def figure(name: str, value: str, goal: str = "") -> None:
        figures.append((name, value, goal))
        say(f"{name}: {value}  {goal}")

    say(f"parked-runs bench on a fresh database {DB}")
    reset_database()
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "DJANGO_SETTINGS_MODULE": "hogsend.settings",
        "HOGSEND_JOURNEY_MODULES": "journeys.shipped,bench.journeys",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
    }
    env.pop("PGAPPNAME", None)
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.db import connection

    figure("load average (1 / 5 / 15 min) at the start", load_average())
    few = min(1000, args.parked)
    seed(0, few)
    sample = args.sample
    at_few = exit_cost(list(range(0, few, max(1, few // sample)))[:sample])
    rate = seed(few, args.parked)
    figure(f"seeded {args.parked} parked runs (set-based SQL, not the engine), runs/s", f"{rate:.0f}")
    step = max(1, args.parked // sample)
    # Contacts other than those that already exited, spread over the whole table.
    at_many = exit_cost(
        [i for i in range(1, args.parked, step) if i >= few or i % max(1, few // sample)][:sample]
    )
    for label, cost in ((f"{few:,} parked", at_few), (f"{args.parked:,} parked", at_many)):
        figure(
            f"exit event at {label}: CPU ms per exit (process + database)",
            f"{cost['process ms']:.2f} + {cost['database ms']:.2f}",
            f"{cost['statements']:.1f} statements/exit; p50/p99 {cost['p50 ms']:.1f} / {cost['p99 ms']:.1f} ms; "
            f"exited {cost['exited']:.0f}, still live {cost['still live']:.0f}",
        )
    ratio = (at_many["process ms"] + at_many["database ms"]) / max(
        at_few["process ms"] + at_few["database ms"], 1e-9
    )
    figure(f"exit cost at {args.parked:,} vs {few:,} parked (CPU)", f"{ratio:.2f} x", "goal: flat (<= 1.5)")
    with connection.cursor() as cursor:
        cursor.execute(_LIVE_RUNS_SQL, [f"park-{args.parked - 1}"])
        plan = "\n".join(f"      {row[0]}" for row in cursor.fetchall())
    figure(f"the exit's live-run query at {args.parked:,} parked (EXPLAIN ANALYZE)", "\n" + plan)
    figure("load average (1 / 5 / 15 min) at the end", load_average())
    connection.close()

    if args.engine:
        say(f"parking {args.engine} runs through the real engine (bench.run's parked phase)")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.run",
                "--rounds",
                "1",
                "--phases",
                "parked",
                "--parked",
                str(args.engine),
            ],
            cwd=ROOT,
            check=False,
        )

    print(f"\nHogsend parked-runs bench — {os.cpu_count()} cores\n")
    for name, value, goal in figures:
        print(f"  {name:<66} {value:<24} {goal}")


if __name__ == "__main__":
    main()
