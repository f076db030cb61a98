"""`bin/bench --broadcast N`: one broadcast to N contacts through Celery to the real SMTP sink.

On a fresh database: N contacts written set-based, a Celery worker (prefork, BROADCAST_DRAINS
drains), one broadcast of the shipped announcement to all of them, unthrottled. Prints sends/s from
the broadcast's start to its last recipient, what the sink received, and CPU per send by process
(the Celery tree, the product database's backends, the SMTP sink's thread; from /proc) beside the goal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.cpu import CpuMeter

GOAL_SECONDS = 300
GOAL_RECIPIENTS = 100_000
CORES = 2


def thread_seconds(thread) -> float:
    """CPU seconds one thread of this process has used (the sink's, which runs beside the bench)."""
    raw = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Four drains: each one waits on a database or SMTP round trip between its sends, and two of them
# left both cores mostly idle; four keep them busy (BENCH_BROADCAST_DRAINS sets another number).
DRAINS = 4


def run_broadcast(
    *, recipients: int, workdir: Path, sink, env: dict[str, str], concurrency: int = DRAINS
) -> list:
    from bench.run import BENCH_APP_NAME, DB, PG_PORT, ROOT, VENV_BIN, reset_database, say, wait_until

    reset_database()
    concurrency = int(os.environ.get("BENCH_BROADCAST_DRAINS", concurrency))
    env = {**env, "BROADCAST_DRAINS": str(concurrency)}
    os.environ.update(env)
    os.environ["PGAPPNAME"] = BENCH_APP_NAME
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.db import connection

    say(f"writing {recipients:,} contacts")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (id, user_id, email, properties, unsubscribed_at, category_opt_outs,
                category_opt_ins, confirmation_required, created_at, updated_at)
            SELECT gen_random_uuid(), 'bc-' || i, 'bc' || i || '@bench.example', '{"plan": "pro"}', NULL,
                   '{}', '{}', false, now(), now()
            FROM generate_series(1, %s) i
            """,
            [recipients],
        )
        cursor.execute("ANALYZE contacts_contact")
    log = open(workdir / "broadcast-celery.log", "ab")
    celery = subprocess.Popen(
        [str(VENV_BIN / "celery"), "-A", "hogsend", "worker", "--loglevel", "WARNING",
         "--concurrency", str(concurrency)],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    import psycopg

    sampler = psycopg.connect(f"postgres://hogsend@127.0.0.1:{PG_PORT}/postgres", autocommit=True)
    postmaster = int((ROOT / ".run" / "pg" / "postmaster.pid").read_text().split()[0])

    def backends():
        return sampler.execute(
            "SELECT pid, datname FROM pg_stat_activity "
            "WHERE datname IS NOT NULL AND coalesce(application_name, '') <> %s",
            [BENCH_APP_NAME],
        ).fetchall()

    meter = CpuMeter(
        trees={"celery": [celery.pid]},
        databases={"product database": DB},
        postmaster=postmaster,
        sample_sql=backends,
        own_pid=sampler.info.backend_pid,
    )
    time.sleep(8)  # the worker's processes up before the clock starts
    from broadcasts.models import Broadcast
    from broadcasts.selectors import broadcast_progress
    from broadcasts.services import broadcast_create
    from broadcasts.templates import ANNOUNCEMENT

    received_before = sink.received
    sink_thread = sink.controller._thread
    sink_before = thread_seconds(sink_thread)
    meter.start()
    started = time.monotonic()
    broadcast = broadcast_create(
        name="bench",
        template=ANNOUNCEMENT,
        props={"headline": "Dark mode is here", "body": "Try it.", "cta_url": "https://example.com/x"},
        conditions=[],
        rate=0,
    )
    last = [0, time.monotonic()]

    def finished() -> bool:
        broadcast.refresh_from_db()
        progress = broadcast_progress(broadcast=broadcast)
        if time.monotonic() - last[1] > 10:
            say(f"  {progress.done:,}/{progress.total:,} done, {progress.rate:.0f}/s")
            last[:] = [progress.done, time.monotonic()]
        return broadcast.status == Broadcast.Status.COMPLETED

    wait_until(finished, timeout=3600, what="the broadcast to finish", interval=1)
    seconds = time.monotonic() - started
    spent = meter.stop()
    spent["SMTP sink"] = thread_seconds(sink_thread) - sink_before
    celery.terminate()
    celery.wait(timeout=60)
    progress = broadcast_progress(broadcast=broadcast)
    sent = progress.sent
    figures = [
        (f"broadcast to {recipients:,} contacts: sent", f"{sent:,} in {seconds:.0f} s",
         f"sink received {sink.received - received_before:,}; skipped {progress.skipped or 0}"),
        ("  sends/s", f"{sent / seconds:.0f}",
         f"goal >= {GOAL_RECIPIENTS / GOAL_SECONDS:.0f} ({GOAL_RECIPIENTS:,} in <= {GOAL_SECONDS} s); "
         f"at this rate 100,000 take {GOAL_RECIPIENTS / max(sent / seconds, 1e-9):.0f} s"),
    ]  # fmt: skip
    ours = 0.0
    for name, cpu in spent.items():
        per = 1000 * cpu / max(sent, 1)
        if name in ("celery", "product database"):
            ours += per
        figures.append((f"  CPU ms per send: {name}", f"{per:.2f}", ""))
    every = 1000 * sum(spent.values()) / max(sent, 1)
    budget = CORES * GOAL_SECONDS * 1000 / GOAL_RECIPIENTS
    figures.append(("  ours (celery + product database), ms/send", f"{ours:.2f}",
                    f"goal <= ~3 (what is left of {budget:.1f} ms/send on {CORES} cores beside the sink and "
                    "PostgreSQL's own work)"))  # fmt: skip
    figures.append(("  every process above, ms/send", f"{every:.2f}",
                    f"{CORES} cores give {budget:.1f} ms per send for the goal; at this cost 100,000 take "
                    f"{GOAL_RECIPIENTS * every / 1000 / CORES:.0f} s of both cores"))  # fmt: skip
    return figures
