"""`bin/bench --start-cost N`: what N journey starts cost our side, with no engine and no web.

The worker's own share of a start, measured apart from the SDK's: N `user.created` events are
ingested first (not measured), then each is handed to `journeys.runner.journey_execute` exactly as
the worker hands it (the same database thread pool, `run_db`, so the same thread hops), on one
event loop with `--concurrency` runs at once, each stopping at its first durable sleep (the park
is written; the engine's sleep is where the worker would hand over to the SDK). The welcome email
goes to a real SMTP server on loopback in another process.

Printed: CPU ms per start of this process and of the database's backends (/proc), statements per
start, and the database's statements by total execution time (pg_stat_statements, reset before
the window): what the product database spends a start on.

    python -m bench.start_cost [N] [--concurrency 20] [--top 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid

from bench.run import BENCH_APP_NAME, DB, DB_URL, PG_PORT, ROOT, load_average, reset_database, say

JOURNEY = "activation-welcome"

_SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.read()
"""


class _Parked(Exception):
    pass


class ParkingBackend:
    """The worker's backend up to the engine: database work on `run_db`'s threads; the first
    durable sleep ends the run's part here (the park is already written)."""

    def __init__(self, parked: asyncio.Future) -> None:
        self.parked = parked

    def now(self):
        from django.utils import timezone

        return timezone.now()

    async def db(self, fn, /, **kwargs):
        from journeys.runtime.backend import run_db

        return await run_db(fn, **kwargs)

    async def sleep(self, *, run_id, seq, duration, deadline, label) -> None:
        self.parked.set_result(label)
        await asyncio.Event().wait()  # cancelled once measured: the engine holds a real one

    async def wait_for_event(self, **kwargs):
        raise NotImplementedError


def _statements_reset(admin) -> None:
    admin.execute("SELECT pg_stat_statements_reset()")


def _statements_top(admin, top: int, starts: int) -> list[tuple]:
    return admin.execute(
        """
        SELECT round((total_exec_time / %(n)s)::numeric, 3), round((total_plan_time / %(n)s)::numeric, 3),
               round((calls::numeric / %(n)s), 2),
               round((rows::numeric / %(n)s), 2), round(mean_exec_time::numeric, 3),
               regexp_replace(left(query, 150), '\\s+', ' ', 'g')
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = %(db)s
        ORDER BY total_exec_time + total_plan_time DESC LIMIT %(top)s
        """,
        {"n": starts, "db": DB, "top": top},
    ).fetchall()


def _wal(admin) -> int:  # the cluster's, so other databases' writes count too (bench DB only: idle)
    return admin.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]


def _commits(admin) -> int:
    return admin.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [DB]).fetchone()[0]


async def _starts(payloads: list[dict], concurrency: int) -> tuple[int, float]:
    from journeys.registry import registry
    from journeys.runner import journey_execute

    journey = registry.get(JOURNEY)
    gate = asyncio.Semaphore(concurrency)
    parked = 0

    async def one(payload: dict) -> None:
        nonlocal parked
        async with gate:
            done = asyncio.get_running_loop().create_future()
            run = asyncio.ensure_future(
                journey_execute(
                    journey=journey,
                    payload=payload,
                    engine_run_id=str(uuid.uuid4()),
                    backend=ParkingBackend(done),
                )
            )
            finished, _ = await asyncio.wait([run, done], return_when=asyncio.FIRST_COMPLETED)
            if done in finished:
                parked += 1
            run.cancel()

    began = time.monotonic()
    await asyncio.gather(*(one(p) for p in payloads))
    return parked, time.monotonic() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("starts", nargs="?", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20, help="runs in flight at once (default 20)")
    parser.add_argument("--top", type=int, default=15, help="statements listed (default 15)")
    args = parser.parse_args(argv)

    from bench.run import free_port

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", _SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"

    say(f"start-cost bench on a fresh database {DB}")
    reset_database()
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "DJANGO_SETTINGS_MODULE": "hogsend.settings",
        "HOGSEND_JOURNEY_MODULES": "journeys.shipped,bench.journeys",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
    }
    env.pop("PGAPPNAME", None)
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ["PGAPPNAME"] = BENCH_APP_NAME
    import django

    django.setup()
    import psycopg
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext

    from bench.parked import meter
    from contacts.ingest import event_ingest
    from contacts.models import Event
    from contacts.outbox import event_engine_payload
    from emails.models import EmailLog
    from journeys.runtime import backend as runtime_backend

    say(f"ingesting {args.starts} user.created events (not measured)")
    ids = [
        event_ingest(
            name="user.created", user_id=f"start-{i}", email=f"start-{i}@bench.example", dispatch=False
        ).event.id
        for i in range(args.starts + 20)
    ]
    events = {e.id: e for e in Event.objects.select_related("contact").filter(id__in=ids)}
    payloads = [event_engine_payload(events[i]) for i in ids]
    connection.close()
    # As `runworker` keeps them (journeys.runtime.worker.run_worker): one connection per database thread.
    connections["default"].settings_dict["CONN_MAX_AGE"] = 600
    warm, measured = payloads[:20], payloads[20:]
    asyncio.run(_starts(warm, args.concurrency))  # connections, templates, SMTP sessions

    admin = psycopg.connect(
        f"postgres://hogsend@127.0.0.1:{PG_PORT}/postgres",
        autocommit=True,
        application_name=BENCH_APP_NAME,
    )
    captured_counts: list[int] = []
    original = runtime_backend._with_fresh_connection

    def counted(fn, kwargs):
        with CaptureQueriesContext(connection) as captured:
            result = original(fn, kwargs)
        captured_counts.append(sum(1 for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]))
        return result

    runtime_backend._with_fresh_connection = counted
    load_before = load_average()
    _statements_reset(admin)
    wal, commits = _wal(admin), _commits(admin)
    cpu = meter()
    cpu.start()
    parked, seconds = asyncio.run(_starts(measured, args.concurrency))
    spent = cpu.stop()
    wal, commits = _wal(admin) - wal, _commits(admin) - commits
    top = _statements_top(admin, args.top, len(measured))
    runtime_backend._with_fresh_connection = original
    n = len(measured)
    sent = EmailLog.objects.filter(status="sent").count()
    process_ms = 1000 * spent["bench process (ingest in-process)"] / n
    database_ms = 1000 * spent["database"] / n

    print(
        f"\nHogsend start-cost bench — {os.cpu_count()} cores, {n} starts of {JOURNEY}, {args.concurrency} at once\n"
    )
    rows = [
        ("load average (1 / 5 / 15 min) at the start / end", f"{load_before} / {load_average()}"),
        ("runs parked at their first sleep / emails sent", f"{parked} / {sent - 20}"),
        ("starts/s (one process, no engine)", f"{n / seconds:.0f}"),
        ("CPU ms per start: this process (worker side, no SDK)", f"{process_ms:.2f}"),
        ("CPU ms per start: the product's database backends", f"{database_ms:.2f}"),
        ("CPU ms per start: ours without the SDK and the web", f"{process_ms + database_ms:.2f}"),
        ("statements per start (Django's, worker side)", f"{sum(captured_counts) / n:.1f}"),
        ("database thread hops per start", f"{len(captured_counts) / n:.1f}"),
        ("commits per start (pg_stat_database)", f"{commits / n:.1f}"),
        ("WAL bytes per start", f"{wal / n:.0f}"),
    ]
    for name, value in rows:
        print(f"  {name:<58} {value}")
    print(
        "\n  pg_stat_statements, per start: exec ms, plan ms (with track_planning on), calls, rows, mean exec ms"
    )
    for exec_ms, plan_ms, calls, rows_, mean, query in top:
        print(f"  {exec_ms:>7} {plan_ms:>7} {calls:>5} {rows_:>6} {mean:>7}  {query}")
    admin.close()
    sink.communicate("")


if __name__ == "__main__":
    main()
