"""`bin/bench --ingest`: single-event and batch ingest beside the floor, in the same run.

Starts the web as `bin/run` does (gunicorn, `hogsend/gunicorn.conf.py`) and the floor
(`bench.floor`: the same schema behind ninja, one INSERT) on one fresh database, then drives both
with vegeta: the floor at full speed, single events at full speed, single events at half that
rate (latency), and 1,000-event batches. No worker or engine runs: ingest's cost ends at commit
(the outbox rows wait, pending, for a relay). CPU per event comes from /proc over each attack's
window (the web's gunicorn tree, the database's backends); the load average is printed, because
on a shared box the ratio to the floor and the CPU per event are the figures that hold.

    python -m bench.ingest [--seconds 10] [--profile]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.cpu import CpuMeter
from bench.run import (
    BENCH_APP_NAME,
    DB,
    DB_URL,
    FLOOR_TABLE,
    PG_PORT,
    ROOT,
    VENV_BIN,
    Attack,
    Vegeta,
    _port_open,
    free_port,
    reset_database,
    say,
    summarize_profile,
    wait_until,
)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


class IngestBench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.vegeta = Vegeta(args.vegeta, workdir)
        self.figures: list[tuple[str, str, str]] = []
        self.procs: dict[str, subprocess.Popen] = {}

    def figure(self, name: str, value: str, goal: str = "") -> None:
        self.figures.append((name, value, goal))
        say(f"{name}: {value}  {goal}")

    # --- processes -----------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)

    def start(self, env: dict[str, str]) -> tuple[int, int]:
        web_port, floor_port = free_port(), free_port()
        self.spawn(
            "web",
            [str(VENV_BIN / "gunicorn"), "-c", "hogsend/gunicorn.conf.py", "hogsend.wsgi"],
            {**env, "PORT": str(web_port)},
        )
        self.spawn(
            "floor",
            [
                str(VENV_BIN / "gunicorn"),
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{floor_port}",
                "bench.floor:application",
            ],
            {**env, "FLOOR_DB_NAME": DB},
        )
        for port in (web_port, floor_port):
            wait_until(lambda p=port: _port_open(p), timeout=60, what=f"web on port {port}")
        return web_port, floor_port

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def meter(self, tree: str) -> CpuMeter:
        import psycopg

        postmaster = int((ROOT / ".run" / "pg" / "postmaster.pid").read_text().split()[0])
        sampler = psycopg.connect(f"postgres://hogsend@127.0.0.1:{PG_PORT}/postgres", autocommit=True)

        def backends() -> list[tuple[int, str]]:
            return sampler.execute(
                "SELECT pid, datname FROM pg_stat_activity "
                "WHERE datname IS NOT NULL AND coalesce(application_name, '') <> %s",
                [BENCH_APP_NAME],
            ).fetchall()

        return CpuMeter(
            trees={tree: [self.procs[tree].pid]},
            databases={"database": DB},
            postmaster=postmaster,
            sample_sql=backends,
            own_pid=sampler.info.backend_pid,
        )

    # --- load ----------------------------------------------------------------------------------

    @staticmethod
    def events(name: str, prefix: str, n: int) -> list[dict]:
        return [
            {"name": name, "userId": f"{prefix}{i}", "userEmail": f"{prefix}{i}@bench.example"}
            for i in range(n)
        ]

    def measured(
        self, tree: str, targets: Path, *, events_per_request: int = 1, **attack
    ) -> tuple[Attack, dict[str, float]]:
        """An attack and the CPU ms per event each component spent over it."""
        meter = self.meter(tree)
        meter.start()
        result = self.vegeta.attack(targets, **attack)
        spent = meter.stop()
        ok = sum(n for code, n in result.codes.items() if code.startswith("2")) * events_per_request
        per_event = {
            name: 1000 * seconds / max(ok, 1) for name, seconds in spent.items() if name in (tree, "database")
        }
        return result, per_event

    def cpu_text(self, per_event: dict[str, float]) -> str:
        return ", ".join(f"{name} {ms:.2f}" for name, ms in per_event.items()) + (
            f"; total {sum(per_event.values()):.2f}"
        )

    def run(self, web_port: int, floor_port: int, key: str) -> None:
        secs = self.args.seconds
        auth = {"Authorization": f"Bearer {key}"}
        api = f"http://127.0.0.1:{web_port}/v1"
        floor_url = f"http://127.0.0.1:{floor_port}/v1/events"
        tag = uuid.uuid4().hex[:6]
        self.figure("load average (1 / 5 / 15 min) at the start", load_average())

        warm = self.events("bench.noop", f"warm{tag}-", 2000)
        self.vegeta.attack(self.vegeta.targets(floor_url, warm, {}), rate=None, seconds=3)
        self.vegeta.attack(self.vegeta.targets(f"{api}/events", warm, auth), rate=None, seconds=3)

        noop = self.events("bench.noop", f"n{tag}-", 60_000)
        floor, floor_cpu = self.measured(
            "floor", self.vegeta.targets(floor_url, noop, {}), rate=None, seconds=secs
        )
        single, single_cpu = self.measured(
            "web", self.vegeta.targets(f"{api}/events", noop, auth), rate=None, seconds=secs
        )
        if not floor.rate or not single.rate:
            raise SystemExit(f"bench: no successful requests (floor {floor.codes}, product {single.codes})")
        self.figure(
            "floor: one INSERT behind ninja, req/s",
            f"{floor.rate:.0f}",
            f"p99 {floor.p99_ms:.1f} ms; codes {floor.codes}",
        )
        self.figure("  floor CPU ms per event", self.cpu_text(floor_cpu))
        self.figure(
            "single-event ingest, events/s",
            f"{single.rate:.0f} ({single.rate / floor.rate:.2f} x floor)",
            f"goal >= 0.5 x floor; codes {single.codes}",
        )
        self.figure("  single-event CPU ms per event", self.cpu_text(single_cpu))
        ratio = sum(single_cpu.values()) / max(sum(floor_cpu.values()), 1e-9)
        self.figure("  CPU per event, ingest / floor", f"{ratio:.2f}", "goal <= 2 (the same as 0.5 x floor)")

        # The same, for contacts the product knows already (the usual case: a user's later
        # events): the contact upsert then reads and writes nothing.
        known = [
            {
                "name": "bench.noop",
                "userId": f"n{tag}-{i % 2000}",
                "userEmail": f"n{tag}-{i % 2000}@bench.example",
            }
            for i in range(60_000)
        ]
        repeat, repeat_cpu = self.measured(
            "web", self.vegeta.targets(f"{api}/events", known, auth), rate=None, seconds=secs
        )
        self.figure(
            "single-event ingest, known contacts, events/s",
            f"{repeat.rate:.0f} ({repeat.rate / floor.rate:.2f} x floor)",
            f"goal >= 0.5 x floor; codes {repeat.codes}",
        )
        self.figure("  known contacts: CPU ms per event", self.cpu_text(repeat_cpu))

        half = self.vegeta.attack(
            self.vegeta.targets(f"{api}/events", self.events("bench.noop", f"h{tag}-", 60_000), auth),
            rate=single.rate / 2,
            seconds=secs,
        )
        self.figure(
            f"single-event p50/p99 at half max ({single.rate / 2:.0f}/s), ms",
            f"{half.p50_ms:.1f} / {half.p99_ms:.1f}",
            f"goal p99 <= 50 ms; codes {half.codes}",
        )

        batches = [
            {"events": self.events("bench.noop", f"b{tag}-{j}-", 1000)} for j in range(max(40, secs * 6))
        ]
        batch, batch_cpu = self.measured(
            "web",
            self.vegeta.targets(f"{api}/events/batch", batches, auth),
            events_per_request=1000,
            rate=None,
            seconds=secs,
            workers=4,
        )
        self.figure(
            "batch ingest (1,000-event batches, 4 clients), events/s",
            f"{batch.rate * 1000:.0f}",
            f"goal >= 10,000; p99 {batch.p99_ms:.0f} ms; codes {batch.codes}",
        )
        self.figure("  batch CPU ms per event", self.cpu_text(batch_cpu))
        if self.args.profile:  # an attack of its own: py-spy's sampling costs CPU on this box too
            for kind, url, bodies, workers in (
                ("single-event", f"{api}/events", self.events("bench.noop", f"s{tag}-", 60_000), 16),
                ("batch", f"{api}/events/batch", batches, 4),
            ):
                profiles = self.profile(secs, kind)
                self.vegeta.attack(
                    self.vegeta.targets(url, bodies, auth), rate=None, seconds=secs, workers=workers
                )
                for name, proc, path in profiles:
                    proc.wait()
                    self.figure(f"profile of the {name} during {kind} ingest", summarize_profile(path))
        self.figure("load average (1 / 5 / 15 min) at the end", load_average())

    def profile(self, seconds: float, kind: str) -> list[tuple[str, subprocess.Popen, Path]]:
        path = self.workdir / f"profile-web-{kind}.txt"
        argv = [str(VENV_BIN / "py-spy"), "record", "-p", str(self.procs["web"].pid), "-d", str(int(seconds))]
        argv += ["-f", "raw", "-o", str(path), "--subprocesses", "--gil"]
        return [("web", subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each attack")
    parser.add_argument("--vegeta", default=os.environ.get("VEGETA", "vegeta"))
    parser.add_argument("--profile", action="store_true", help="py-spy the web during single-event ingest")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="hogsend-bench-ingest-"))
    say(f"ingest bench on a fresh database {DB}; logs in {workdir}")
    reset_database()
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "DJANGO_SETTINGS_MODULE": "hogsend.settings",
        "INGEST_RATE_LIMIT_REQUESTS": "0",
        "INGEST_RATE_LIMIT_EVENTS": "0",
        "LOG_LEVEL": "WARNING",
        "DEBUG": os.environ.get("DEBUG", "false"),
    }
    env.pop("PGAPPNAME", None)
    os.environ.update(env)
    os.environ["PGAPPNAME"] = BENCH_APP_NAME
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.db import connection

    from contacts.services import api_key_create

    _, key = api_key_create(name="bench", scopes=["ingest"])
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_TABLE)
    connection.close()

    bench = IngestBench(args, workdir)
    try:
        web_port, floor_port = bench.start(env)
        started = time.monotonic()
        bench.run(web_port, floor_port, key)
        say(f"ingest bench took {time.monotonic() - started:.0f} s")
    finally:
        bench.stop()
    print(f"\nHogsend ingest bench — {os.cpu_count()} cores; logs in {workdir}\n")
    for name, value, goal in bench.figures:
        print(f"  {name:<62} {value:<30} {goal}")


if __name__ == "__main__":
    main()
