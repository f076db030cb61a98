"""`bin/bench`: the event path under load, each figure printed beside its goal and its floor.

Runs the product the way `bin/run` does (gunicorn web, `runworker` with its relay, Celery worker
and beat, the Hatchet engine, a real SMTP server on loopback taking the mail) on a database of its
own, and the floor (`bench.floor`) beside it on the same PostgreSQL. Load comes from vegeta, never
from Python loops; latencies inside the product are read from the rows it writes.

    python -m bench.run [--rounds 1 2 1+relay] [--phases ingest trigger parked]
                        [--trigger-rates 50 100] [--trigger-seconds 60] [--drain-seconds 300]
                        [--parked 100000] [--park-seconds 180] [--profile]
    python -m bench.run --ingest [--seconds 10] [--profile]

Phases: `ingest` (single events and 1,000-event batches beside the floor, CPU ms per event),
`trigger` (50 and 100 triggering events/s: every first email, its p50/p99, the drain, CPU ms per
journey start by component), `parked` (runs parked through the engine: parking rate, wake-up p99
parked vs none, exit cost at many vs 1,000). Ingest and parked run in the first round; trigger in
every round, so the rounds (one worker, two, the relay apart) compare on the same load.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import CpuMeter

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PG_PORT = os.environ.get("HOGSEND_PG_PORT", "54329")
DB = os.environ.get("BENCH_DB", "hogsend_bench")
DB_URL = f"postgres://hogsend@127.0.0.1:{PG_PORT}/{DB}"
CONCURRENCY = 16
ENGINE_DB = "hatchet"
# The bench's own database connections (its samplers) carry this name and are counted nowhere.
BENCH_APP_NAME = "hogsend-bench"
# Components, as `bin/bench` prints them: ours first, then the engine's. Celery's beat and sweeps
# run on a clock, not per start (a fixed cost per second, spread over the starts of the window):
# printed beside ours, not in it, as the goal counts worker, relay, web and the product database.
OURS = ("worker", "relay", "web", "product database")
BACKGROUND = ("celery",)
ENGINE = ("engine", "engine database")


def say(text: str) -> None:
    print(f"\033[1m--> {text}\033[0m", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"bench: timed out after {timeout:.0f}s waiting for {what}")


# --- load ------------------------------------------------------------------------------------


@dataclass
class Attack:
    rate: float  # requests/s achieved
    success: float
    p50_ms: float
    p99_ms: float
    codes: dict[str, int]
    requests: int

    @classmethod
    def parse(cls, report: dict[str, Any]) -> Attack:
        lat = report["latencies"]
        return cls(
            rate=report["throughput"],
            success=report["success"],
            p50_ms=lat["50th"] / 1e6,
            p99_ms=lat["99th"] / 1e6,
            codes=report.get("status_codes") or {},
            requests=report["requests"],
        )


class Vegeta:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir

    def targets(self, url: str, bodies: list[dict | list], headers: dict[str, str]) -> Path:
        path = self.workdir / f"targets-{uuid.uuid4().hex[:8]}.jsonl"
        header = {k: [v] for k, v in {"Content-Type": "application/json", **headers}.items()}
        with path.open("w") as f:
            for body in bodies:
                raw = json.dumps(body).encode()
                f.write(
                    json.dumps(
                        {
                            "method": "POST",
                            "url": url,
                            "body": base64.b64encode(raw).decode(),
                            "header": header,
                        }
                    )
                    + "\n"
                )
        return path

    def attack(
        self,
        targets: Path,
        *,
        rate: float | None,
        seconds: float,
        workers: int = CONCURRENCY,
        total: int | None = None,
    ) -> Attack:
        """`rate=None`: as fast as `workers` concurrent clients can go; `total`: exactly that many
        requests spread over `seconds` (each target once, when there are that many targets)."""
        if total is not None:
            pace = [f"-rate={total}/{int(seconds)}s"]
        elif rate is None:
            pace = ["-rate=0", f"-max-workers={workers}"]
        else:
            pace = [f"-rate={rate:.0f}/s"]
        attack = subprocess.Popen(
            [
                self.binary,
                "attack",
                "-format=json",
                f"-targets={targets}",
                f"-duration={seconds}s",
                f"-workers={workers}",
                "-timeout=60s",
                "-keepalive=true",
                *pace,
            ],
            stdout=subprocess.PIPE,
        )
        report = subprocess.run(
            [self.binary, "report", "-type=json"], stdin=attack.stdout, capture_output=True, check=True
        )
        attack.wait()
        return Attack.parse(json.loads(report.stdout))


# --- the product's processes ------------------------------------------------------------------


class Sink:
    """A real SMTP server on loopback that only counts what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.received = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        return "250 OK"


class Product:
    def __init__(self, *, workers: int, relay_apart: bool, env: dict[str, str], logs: Path) -> None:
        """`workers=0`: the web and the floor only (ingest alone: no worker, relay, Celery or engine)."""
        self.workers = workers
        self.relay_apart = relay_apart
        self.env = env
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.port = free_port()
        self.floor_port = free_port()

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env or self.env, stdout=log, stderr=log)
        self.procs.append((name, proc))
        return proc

    def start(self) -> None:
        web = {**self.env, "PORT": str(self.port)}
        self.spawn("web", [str(VENV_BIN / "gunicorn"), "-c", "hogsend/gunicorn.conf.py", "hogsend.wsgi"], web)
        floor = {**self.env, "FLOOR_DB_NAME": DB}
        self.spawn(
            "floor",
            [
                str(VENV_BIN / "gunicorn"),
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{self.floor_port}",
                "bench.floor:application",
            ],
            floor,
        )
        for i in range(self.workers):
            no_relay = ["--no-relay"] if self.relay_apart else []
            self.spawn(f"worker{i}", [sys.executable, "manage.py", "runworker", *no_relay])
        if self.relay_apart and self.workers:
            self.spawn("relay", [sys.executable, "manage.py", "relay"])
        if self.workers:
            self.spawn(
                "celery",
                [
                    str(VENV_BIN / "celery"),
                    "-A",
                    "hogsend",
                    "worker",
                    "-B",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    "2",
                    "--schedule",
                    str(self.logs / "celerybeat-schedule"),
                ],
            )
        for port in (self.port, self.floor_port):
            wait_until(lambda p=port: _port_open(p), timeout=60, what=f"web on port {port}")
        wait_until(
            lambda: sum(
                b"waiting for tasks" in (self.logs / f"worker{i}.log").read_bytes()
                for i in range(self.workers)
            )
            == self.workers,
            timeout=120,
            what="the journey workers",
        )

    def pids(self, prefix: str) -> list[int]:
        return [proc.pid for name, proc in self.procs if name.startswith(prefix)]

    def profile(self, seconds: float, suffix: str = "") -> list[tuple[str, subprocess.Popen, Path]]:
        """Sample the web processes and the first worker with py-spy for `seconds`."""
        spy = str(VENV_BIN / "py-spy")
        started = []
        for name, proc in self.procs:
            if name in ("web", "worker0"):
                path = self.logs / f"profile-{name}{'-' + suffix if suffix else ''}.txt"
                argv = [
                    spy,
                    "record",
                    "-p",
                    str(proc.pid),
                    "-d",
                    str(int(seconds)),
                    "-f",
                    "raw",
                    "-o",
                    str(path),
                ]
                # gunicorn's workers, the SDK's listener process; only samples holding the GIL, so
                # a thread waiting on PostgreSQL or the engine is not counted as busy.
                argv += ["--subprocesses", "--gil"]
                started.append(
                    (name, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path)
                )
        return started

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within 40 s of SIGTERM; killing it")
                proc.kill()


def cpu_meter(product: Product) -> CpuMeter:
    """A meter over every component of this round: the product's processes by role, the
    engine (`bin/engine`'s pid file), and the backends of each of the two databases."""
    import psycopg

    run = ROOT / ".run"
    postmaster = int((run / "pg" / "postmaster.pid").read_text().split()[0])
    sampler = psycopg.connect(f"postgres://hogsend@127.0.0.1:{PG_PORT}/postgres", autocommit=True)
    own = sampler.info.backend_pid

    def backends() -> list[tuple[int, str]]:
        return sampler.execute(
            "SELECT pid, datname FROM pg_stat_activity "
            "WHERE datname IS NOT NULL AND coalesce(application_name, '') <> %s",
            [BENCH_APP_NAME],
        ).fetchall()

    trees = {"web": product.pids("web"), "floor": product.pids("floor")}
    databases = {"product database": DB}
    if product.workers:
        trees.update(worker=product.pids("worker"), celery=product.pids("celery"))
        if product.relay_apart:
            trees["relay"] = product.pids("relay")
        trees["engine"] = [int((run / "engine.pid").read_text().split()[0])]
        databases["engine database"] = ENGINE_DB
    return CpuMeter(
        trees=trees,
        databases=databases,
        postmaster=postmaster,
        sample_sql=backends,
        own_pid=own,
    )


def cpu_text(per_event: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.2f}" for name, ms in per_event.items()) + (
        f"; total {sum(per_event.values()):.2f}"
    )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def summarize_profile(path: Path, top: int = 12) -> str:
    """Where the samples went: the project's functions that hold the most (inclusive), then the
    packages whose code was on CPU (the innermost frame's package: django, psycopg, grpc...)."""
    if not path.exists():
        return "(no profile: is py-spy allowed to attach here?)"
    inclusive: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        seen = set()
        for frame in frames:
            if (
                any(part in frame for part in ("contacts/", "journeys/", "emails/", "hogsend/"))
                and frame not in seen
            ):
                seen.add(frame)
                inclusive[frame] = inclusive.get(frame, 0) + int(n)
        if frames:
            where = frames[-1].rpartition("(")[2].split("/")[0].split(".py")[0] or "?"
            leaves[where] = leaves.get(where, 0) + int(n)
    rows = sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    packages = sorted(leaves.items(), key=lambda kv: -kv[1])[:8]
    share = lambda n: f"{100 * n / max(total, 1):5.1f}%"  # noqa: E731
    return (
        "\n"
        + "\n".join(f"      {share(n)} {frame}" for frame, n in rows)
        + "\n      on CPU, by package: "
        + ", ".join(f"{name} {share(n).strip()}" for name, n in packages)
    )


# --- the measurements ---------------------------------------------------------------------------


def sql(query: str, params: list | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall()


def percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return at(0.5), at(0.99)


def first_email_latencies(prefix: str, event: str) -> tuple[list[float], int]:
    """Seconds from each contact's `event` reaching the API to its first email leaving; and how
    many contacts have no email yet."""
    rows = sql(
        """
        SELECT extract(epoch FROM min(l.sent_at) - min(e.received_at))
        FROM contacts_contact c
        JOIN contacts_event e ON e.contact_id = c.id AND e.name = %s
        LEFT JOIN emails_emaillog l ON l.contact_id = c.id AND l.status <> 'queued' AND l.sent_at IS NOT NULL
        WHERE c.user_id LIKE %s
        GROUP BY c.id
        """,
        [event, prefix + "%"],
    )
    done = [r[0] for r in rows if r[0] is not None]
    return done, len(rows) - len(done)


def count(query: str, params: list | None = None) -> int:
    return int(sql(query, params)[0][0])


# Engine settings a `+lean` round starts the engine with (bin/engine passes SERVER_* through):
# no tenant pub/sub (the UI's live updates), OLAP operations polled every 10 s instead of 2, no
# log ingestion.
LEAN_ENGINE = {
    "SERVER_DISABLE_TENANT_PUBS": "true",
    "SERVER_OPERATIONS_POLL_INTERVAL": "10",
    "SERVER_LOG_INGESTION_ENABLED": "false",
}


PHASES = ("ingest", "trigger", "parked")


def round_phases(selected: list[str], number: int) -> list[str]:
    """The phases round `number` (from 0) runs: ingest and parked runs measure the product, not a
    configuration of its workers, so only the first round runs them; every round runs trigger."""
    return [phase for phase in PHASES if phase in selected and (number == 0 or phase == "trigger")]


@dataclass(frozen=True)
class Round:
    """One configuration of the product: `1`, `2` (workers), then options: `+relay` (the relay in a
    process of its own), `+events` or `+runs` (ENGINE_START_MODE: the engine fans pushed events
    out, or the relay creates the runs in bulk; default: the product's setting), `+lean` (the
    engine started with LEAN_ENGINE)."""

    workers: int
    relay_apart: bool
    start_mode: str = ""
    lean_engine: bool = False

    @classmethod
    def parse(cls, spec: str) -> Round:
        workers, *options = spec.split("+")
        unknown = set(options) - {"relay", "events", "runs", "lean"}
        if not workers.isdigit() or unknown or {"events", "runs"} <= set(options):
            raise argparse.ArgumentTypeError(
                f"round {spec!r}: expected N[+relay][+events|+runs][+lean] (e.g. 1, 2, 1+relay, 1+events)"
            )
        mode = next((o for o in options if o in ("events", "runs")), "")
        return cls(
            workers=int(workers),
            relay_apart="relay" in options,
            start_mode=mode,
            lean_engine="lean" in options,
        )

    def __str__(self) -> str:
        if not self.workers:
            return "ingest alone: the web and the floor, no worker or engine"
        text = f"{self.workers} worker(s), relay {'in its own process' if self.relay_apart else 'inside'}"
        text += f", engine starts: {self.start_mode or os.environ.get('ENGINE_START_MODE') or 'default'}"
        return text + (", lean engine settings" if self.lean_engine else "")


class Run:
    def __init__(
        self, args: argparse.Namespace, vegeta: Vegeta, round: Round, workdir: Path, phases: list[str]
    ) -> None:
        self.args = args
        self.phases = phases
        self.vegeta = vegeta
        self.round = round
        self.workdir = workdir
        self.figures: list[tuple[str, str, str]] = []
        self.cpu: dict[str, dict[str, float]] = {}
        self.summary: dict[str, dict[str, float]] = {}

    def figure(self, name: str, value: str, goal: str = "") -> None:
        self.figures.append((name, value, goal))
        say(f"{name}: {value}  {goal}")

    def events(self, name: str, prefix: str, n: int, **extra: Any) -> list[dict]:
        return [
            {"name": name, "userId": f"{prefix}{i}", "userEmail": f"{prefix}{i}@bench.example", **extra}
            for i in range(n)
        ]

    def measure(self, product: Product, key: str) -> None:
        args = self.args
        auth = {"Authorization": f"Bearer {key}"}
        api = f"http://127.0.0.1:{product.port}/v1"
        floor_url = f"http://127.0.0.1:{product.floor_port}/v1/events"
        tag = uuid.uuid4().hex[:6]

        # 0. Warm both up (each gunicorn worker imports its views on first use).
        warm = self.events("bench.noop", f"warm{tag}-", 2000)
        self.vegeta.attack(self.vegeta.targets(floor_url, warm, {}), rate=None, seconds=3)
        self.vegeta.attack(self.vegeta.targets(f"{api}/events", warm, auth), rate=None, seconds=3)
        self.figure("load average (1 / 5 / 15 min) at the start", load_average())
        if "ingest" in self.phases:
            self.ingest(product, api, floor_url, auth, tag)
        if "trigger" in self.phases:
            self.latency_floor(api, auth, tag)
            for rate in args.trigger_rates:
                self.trigger(product, api, auth, f"t{int(rate)}{tag}-", rate, args.trigger_seconds)
        if "parked" in self.phases:
            self.parked(product, api, auth, tag)
        self.figure("load average (1 / 5 / 15 min) at the end", load_average())

    def ingest(self, product: Product, api: str, floor_url: str, auth: dict, tag: str) -> None:
        """Single-event ingest at full speed beside the floor (new and known contacts), its p50/p99
        at half the maximum, 1,000-event batches; CPU ms per event of the web (or the floor) and
        the product's database from /proc over each attack. Ingest's cost ends at commit: with
        `--ingest` no worker, relay or engine runs (the outbox rows wait, pending)."""
        secs = self.args.seconds
        noop = self.events("bench.noop", f"n{tag}-", 60_000)
        floor, floor_cpu = self.measured(
            product, "floor", self.vegeta.targets(floor_url, noop, {}), seconds=secs
        )
        single, single_cpu = self.measured(
            product, "web", self.vegeta.targets(f"{api}/events", noop, auth), seconds=secs
        )
        if not floor.rate or not single.rate:
            raise SystemExit(f"bench: no successful requests (floor {floor.codes}, product {single.codes})")
        self.figure(
            "floor: one INSERT behind ninja, req/s",
            f"{floor.rate:.0f}",
            f"p99 {floor.p99_ms:.1f} ms; codes {floor.codes}",
        )
        self.figure("  floor CPU ms per event", cpu_text(floor_cpu))
        self.figure(
            "single-event ingest, events/s",
            f"{single.rate:.0f} ({single.rate / floor.rate:.2f} x floor)",
            f"goal >= 0.5 x floor; codes {single.codes}",
        )
        self.figure("  single-event CPU ms per event", cpu_text(single_cpu))
        ratio = sum(single_cpu.values()) / max(sum(floor_cpu.values()), 1e-9)
        self.figure("  CPU per event, ingest / floor", f"{ratio:.2f}", "goal <= 2 (the same as 0.5 x floor)")
        # Contacts the product knows already (the usual case: a user's later events).
        known = [
            {
                "name": "bench.noop",
                "userId": f"n{tag}-{i % 2000}",
                "userEmail": f"n{tag}-{i % 2000}@bench.example",
            }
            for i in range(60_000)
        ]
        repeat, repeat_cpu = self.measured(
            product, "web", self.vegeta.targets(f"{api}/events", known, auth), seconds=secs
        )
        self.figure(
            "single-event ingest, known contacts, events/s",
            f"{repeat.rate:.0f} ({repeat.rate / floor.rate:.2f} x floor)",
            f"goal >= 0.5 x floor; codes {repeat.codes}",
        )
        self.figure("  known contacts: CPU ms per event", cpu_text(repeat_cpu))
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
            product,
            "web",
            self.vegeta.targets(f"{api}/events/batch", batches, auth),
            events_per_request=1000,
            seconds=secs,
            workers=4,
        )
        self.figure(
            "batch ingest (1,000-event batches, 4 clients), events/s",
            f"{batch.rate * 1000:.0f}",
            f"goal >= 10,000; p99 {batch.p99_ms:.0f} ms; codes {batch.codes}",
        )
        self.figure("  batch CPU ms per event", cpu_text(batch_cpu))
        self.summary["ingest"] = {
            "floor/s": floor.rate,
            "single/s": single.rate,
            "known/s": repeat.rate,
            "half p99 ms": half.p99_ms,
            "batch/s": batch.rate * 1000,
            "single ms/event": sum(single_cpu.values()),
            "batch ms/event": sum(batch_cpu.values()),
        }
        if self.args.profile:  # an attack of its own: py-spy's sampling costs CPU on this box too
            for kind, url, bodies, workers in (
                ("single-event", f"{api}/events", self.events("bench.noop", f"s{tag}-", 60_000), CONCURRENCY),
                ("batch", f"{api}/events/batch", batches, 4),
            ):
                profiles = [p for p in product.profile(secs, suffix=kind) if p[0] == "web"]
                self.vegeta.attack(
                    self.vegeta.targets(url, bodies, auth), rate=None, seconds=secs, workers=workers
                )
                for name, proc, path in profiles:
                    proc.wait()
                    self.figure(f"profile of the {name} during {kind} ingest", summarize_profile(path))

    def measured(
        self, product: Product, tree: str, targets: Path, *, events_per_request: int = 1, **attack: Any
    ) -> tuple[Attack, dict[str, float]]:
        """An attack at full speed and the CPU ms per accepted event of `tree` and the product's
        database over it."""
        meter = cpu_meter(product)
        meter.start()
        result = self.vegeta.attack(targets, rate=None, **attack)
        spent = meter.stop()
        ok = sum(n for code, n in result.codes.items() if code.startswith("2")) * events_per_request
        return result, {
            name: 1000 * seconds / max(ok, 1)
            for name, seconds in spent.items()
            if name in (tree, "product database")
        }

    def latency_floor(self, api: str, auth: dict, tag: str) -> None:
        """The latency of a journey start with almost no load: a few triggering events a second."""
        quiet = f"q{tag}-"
        self.vegeta.attack(
            self.vegeta.targets(f"{api}/events", self.events("user.created", quiet, 100), auth),
            rate=None,
            total=100,
            seconds=20,
        )
        wait_until(
            lambda: first_email_latencies(quiet, "user.created")[1] == 0,
            timeout=300,
            what="first emails",
            interval=1,
        )
        q50, q99 = percentiles(first_email_latencies(quiet, "user.created")[0])
        self.figure(
            "event -> first email at 5 events/s, p50 / p99, ms", f"{q50 * 1000:.0f} / {q99 * 1000:.0f}"
        )

    def trigger(self, product: Product, api: str, auth: dict, prefix: str, rate: float, seconds: int) -> None:
        """Triggering events at a steady rate: every journey's first email, its latency, and the
        CPU each component spent per journey started, from the first request until the last
        first email left."""
        backlog: list[int] = []
        unsent: list[int] = []
        sampling = threading.Event()

        def sample() -> None:
            from django.db import connection

            while not sampling.wait(5):
                backlog.append(count("SELECT count(*) FROM contacts_event WHERE dispatch_state = 'pending'"))
                unsent.append(first_email_latencies(prefix, "user.created")[1])
            connection.close()

        targets = self.vegeta.targets(
            f"{api}/events", self.events("user.created", prefix, int(rate * seconds)), auth
        )
        meter = cpu_meter(product)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        profiles = product.profile(seconds) if self.args.profile else []
        meter.start()
        trig = self.vegeta.attack(targets, rate=rate, seconds=seconds)
        sampling.set()
        attack_ended = time.monotonic()
        while (
            first_email_latencies(prefix, "user.created")[1]
            and time.monotonic() - attack_ended < self.args.drain_seconds
        ):
            time.sleep(1)
        drained_in = time.monotonic() - attack_ended
        spent = meter.stop()
        for name, proc, path in profiles:
            proc.wait()
            self.figure(f"profile of {name} during the load", summarize_profile(path), "")
        lat, missing = first_email_latencies(prefix, "user.created")
        p50, p99 = percentiles(lat)
        goal = "goal p99 <= 1000" if rate <= 50 else "goal: printed"
        self.figure(
            f"{rate:.0f} user.created/s for {seconds}s: accepted",
            f"{trig.codes.get('202', 0)}/{trig.requests}",
            f"goal all; first emails sent {len(lat)}, missing {missing}; codes {trig.codes}"
            f" (0: no answer within vegeta's 60 s; request p99 {trig.p99_ms:.0f} ms)",
        )
        self.figure("  event -> first email p50 / p99, ms", f"{p50 * 1000:.0f} / {p99 * 1000:.0f}", goal)
        self.figure("  outbox pending every 5 s during the load", str(backlog), "goal: not growing")
        self.figure("  journeys without their first email, every 5 s", str(unsent), "goal: not growing")
        self.figure(
            "  after the load, every first email sent within, s",
            f"{drained_in:.0f}" if not missing else f"not within {drained_in:.0f} ({missing} left)",
            "goal <= 60",
        )
        starts = count(
            "SELECT count(*) FROM journeys_journeyrun r JOIN contacts_contact c ON c.id = r.contact_id "
            "WHERE c.user_id LIKE %s",
            [prefix + "%"],
        )
        self.cpu_figures(spent, starts, f"{rate:.0f}/s")
        self.figure(
            "  journeys started per second, first request to last first email",
            f"{starts / max(seconds + drained_in, 1e-9):.1f}",
            f"offered {rate:.0f}/s",
        )
        self.summary[f"{rate:.0f}/s"] = {
            "p50 ms": p50 * 1000,
            "p99 ms": p99 * 1000,
            "drain s": drained_in,
            "missing": missing,
            "starts/s": starts / max(seconds + drained_in, 1e-9),
        }

    def cpu_figures(self, spent: dict[str, float], starts: int, label: str) -> None:
        per = {name: 1000 * s / max(starts, 1) for name, s in spent.items() if name != "floor"}
        self.figure(f"  CPU ms per journey start at {label} ({starts} starts), by component", "", "")
        for name, ms in per.items():
            self.figure(f"    {name}", f"{ms:.2f}", "")
        ours = sum(per.get(n, 0.0) for n in OURS)
        engine = sum(per.get(n, 0.0) for n in ENGINE)
        self.figure(
            f"  ours ({' + '.join(n for n in OURS if n in per)}), ms/start",
            f"{ours:.2f}",
            "goal <= 10, aim 6",
        )
        self.figure(
            f"  engine ({' + '.join(ENGINE)}), ms/start",
            f"{engine:.2f}",
            f"ours / engine {ours / max(engine, 1e-9):.2f} (goal < 1)",
        )
        self.cpu[label] = per
        self.figure(
            "  starts per second one core affords at our cost (1000 / ours)",
            f"{1000 / max(ours, 1e-9):.0f}",
            "",
        )
        self.figure(
            f"    {' + '.join(BACKGROUND)} (on a clock, not per start), ms/start",
            f"{sum(per.get(n, 0.0) for n in BACKGROUND):.2f}",
            "",
        )

    def parked(self, product: Product, api: str, auth: dict, tag: str) -> None:
        """Runs parked in sleeps and waits through the engine (`bench-park`: half in a 30-day sleep,
        half in a 30-day wait): how fast they park, the wake-up latency with none parked and with
        many, and the exit-on cost at 1,000 parked and at many. Parks `--parked` runs, or as many
        as `--park-seconds` allows (printed)."""
        args = self.args
        few = min(1000, args.parked)
        wake_none = self.wake_latency(api, auth, f"w0{tag}-")
        # The exit sample at 1,000 parked comes from contacts of their own, so exits do not thin
        # out the runs counted as parked below.
        self.park(api, auth, f"x{tag}-", start=0, total=few, seconds=None)
        exit_few = self.exit_cost(product, api, auth, f"x{tag}-", range(few))
        prefix = f"p{tag}-"
        began = time.monotonic()
        mine = self.park(api, auth, prefix, start=0, total=args.parked - few, seconds=args.park_seconds)
        took = time.monotonic() - began
        parked = mine + few - exit_few[0].requests  # with the 1,000 less those that exited
        self.figure(
            "parking through the engine (trigger -> run asleep or waiting), runs/s",
            f"{mine / max(took, 1e-9):.1f}",
            f"{parked:,} parked after {took:.0f} s (goal {args.parked:,}, or as many as --park-seconds allows)",
        )
        wake_many = self.wake_latency(api, auth, f"w1{tag}-")
        exit_many = self.exit_cost(product, api, auth, prefix, range(mine))
        self.figure(
            "wake-up (awaited event -> email) p50/p99 with none parked, ms",
            f"{wake_none[0] * 1000:.0f} / {wake_none[1] * 1000:.0f}",
        )
        ratio = wake_many[1] / max(wake_none[1], 1e-9)
        self.figure(
            f"wake-up p50/p99 with {parked:,} parked, ms",
            f"{wake_many[0] * 1000:.0f} / {wake_many[1] * 1000:.0f}",
            f"p99 parked / none {ratio:.2f} (goal <= 1.5)",
        )
        for label, (attack, cpu) in ((f"{few:,}", exit_few), (f"{parked:,}", exit_many)):
            self.figure(
                f"exit-on event at {label} parked: CPU ms per exit (web + product database)",
                cpu_text(cpu),
                f"ingest p50/p99 {attack.p50_ms:.1f} / {attack.p99_ms:.1f} ms; codes {attack.codes}",
            )
        exit_ratio = sum(exit_many[1].values()) / max(sum(exit_few[1].values()), 1e-9)
        self.figure(
            f"exit cost at {parked:,} vs {few:,} parked (CPU)",
            f"{exit_ratio:.2f} x",
            f"p99 {exit_many[0].p99_ms / max(exit_few[0].p99_ms, 1e-9):.2f} x (goal: flat, <= 1.5)",
        )
        self.summary["parked"] = {
            "parked": parked,
            "parking runs/s": mine / max(took, 1e-9),
            "wake p99 none ms": wake_none[1] * 1000,
            "wake p99 parked ms": wake_many[1] * 1000,
            "exit ratio": exit_ratio,
        }

    def park(
        self, api: str, auth: dict, prefix: str, *, start: int, total: int, seconds: float | None
    ) -> int:
        """Park contacts `prefix`start..total-1: 1,000-event batches through the API, each sent
        once the runs before it have nearly all parked (so nothing is left queued when the time is
        up), until `total` or `seconds` is reached; then wait for what was sent to park. Returns
        how many of this prefix are parked."""
        deadline = time.monotonic() + seconds if seconds else float("inf")
        url = f"{api}/events/batch"
        last = [-1, time.monotonic()]

        def parked_now() -> int:
            n = count(
                "SELECT count(*) FROM journeys_journeyrun r JOIN contacts_contact c ON c.id = r.contact_id "
                "WHERE r.journey_id = 'bench-park' AND r.status = 'waiting' AND c.user_id LIKE %s",
                [prefix + "%"],
            )
            if n != last[0]:
                last[:] = [n, time.monotonic()]
                say(f"  parked {n:,}/{total:,} ({prefix})")
            return n

        sent = start
        while sent < total and time.monotonic() < deadline:
            if sent - parked_now() > 1500:
                if time.monotonic() - last[1] > 120:
                    break
                time.sleep(1)
                continue
            batch = {
                "events": [
                    {"name": "bench.park", "userId": f"{prefix}{i}", "idempotencyKey": f"{prefix}park-{i}"}
                    for i in range(sent, min(sent + 1000, total))
                ]
            }
            self.vegeta.attack(
                self.vegeta.targets(url, [batch], auth), rate=None, total=1, seconds=1, workers=1
            )
            sent = min(sent + 1000, total)
        while parked_now() < sent and time.monotonic() - last[1] < 120:
            time.sleep(2)
        if last[0] < sent:
            say(f"  parking stalled at {last[0]:,} of {sent:,} sent")
        return last[0]

    def wake_latency(self, api: str, auth: dict, prefix: str, n: int = 200) -> tuple[float, float]:
        waiting = self.events("bench.wait", prefix, n)
        sent = self.vegeta.attack(
            self.vegeta.targets(f"{api}/events", waiting, auth), rate=None, total=n, seconds=n // 50
        )
        # vegeta paces `total` over its duration and, on a busy machine, can reach the end of the
        # duration a request short: wait for the runs of the events it got accepted.
        accepted = sum(k for code, k in sent.codes.items() if code.startswith("2"))
        if accepted < n:
            say(f"  wake-up sample: {accepted} of {n} wait events accepted (codes {sent.codes})")
        n = accepted
        wait_until(
            lambda: count(
                "SELECT count(*) FROM journeys_journeyrun r JOIN contacts_contact c ON c.id = r.contact_id "
                "WHERE r.journey_id = 'bench-wake' AND r.status = 'waiting' AND c.user_id LIKE %s",
                [prefix + "%"],
            )
            >= n,
            timeout=600,
            what="the wake-up sample to park",
        )
        time.sleep(1)
        waiters = [
            row[0]
            for row in sql(
                "SELECT c.user_id FROM journeys_journeyrun r JOIN contacts_contact c ON c.id = r.contact_id "
                "WHERE r.journey_id = 'bench-wake' AND r.status = 'waiting' AND c.user_id LIKE %s",
                [prefix + "%"],
            )
        ]
        wakes = [{"name": "bench.wake", "userId": user_id} for user_id in waiters]
        self.vegeta.attack(
            self.vegeta.targets(f"{api}/events", wakes, auth),
            rate=None,
            total=n,
            seconds=n // 20,
        )
        wait_until(
            lambda: first_email_latencies(prefix, "bench.wake")[1] == 0,
            timeout=300,
            what="wake-up emails",
            interval=1,
        )
        return percentiles(first_email_latencies(prefix, "bench.wake")[0])

    def exit_cost(
        self, product: Product, api: str, auth: dict, prefix: str, parked: range
    ) -> tuple[Attack, dict[str, float]]:
        """Exit events (`bench.leave`, which ends the contact's parked run inside the ingest
        transaction) for up to 400 parked contacts spread over `parked`, at 40/s: ingest latency,
        and CPU ms per exit of the web and the product's database."""
        sample = [
            {"name": "bench.leave", "userId": f"{prefix}{i}"} for i in parked[:: max(1, len(parked) // 400)]
        ]
        sample = sample[:400]
        meter = cpu_meter(product)
        meter.start()
        attack = self.vegeta.attack(
            self.vegeta.targets(f"{api}/events", sample, auth), rate=None, total=len(sample), seconds=10
        )
        spent = meter.stop()
        ok = max(sum(n for code, n in attack.codes.items() if code.startswith("2")), 1)
        return attack, {name: 1000 * spent[name] / ok for name in ("web", "product database")}


FLOOR_TABLE = """
CREATE TABLE floor_event (
    id uuid PRIMARY KEY, user_id text NOT NULL, name text NOT NULL,
    properties jsonb NOT NULL, occurred_at timestamptz NOT NULL DEFAULT now()
)
"""


_engine_lean = False


def engine_restart(*, lean: bool) -> None:
    """Restart the engine when a round wants other settings than the one running has."""
    global _engine_lean
    if lean == _engine_lean:
        return
    say(f"restarting the engine with {'lean' if lean else 'its default'} settings")
    env = {k: v for k, v in os.environ.items() if k not in LEAN_ENGINE}
    if lean:
        env.update(LEAN_ENGINE)
    subprocess.run([str(ROOT / "bin" / "engine"), "stop"], cwd=ROOT, env=env, check=True)
    subprocess.run([str(ROOT / "bin" / "engine"), "start"], cwd=ROOT, env=env, check=True)
    _engine_lean = lean


def reset_database() -> None:
    admin = f"postgres://hogsend@127.0.0.1:{PG_PORT}/postgres"
    for statement in (f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", admin, "-qc", statement], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds",
        type=Round.parse,
        nargs="+",
        default=[Round.parse(r) for r in ("1", "2", "1+relay")],
        help="product configurations, each on a fresh database: N workers, or N+relay for the relay "
        "in a process of its own (default: 1 2 1+relay)",
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="what to measure; ingest and parked run in the first round only, trigger in every round "
        "(default: all)",
    )
    parser.add_argument(
        "--ingest",
        action="store_true",
        help="only the ingest phase, with the web and the floor alone (no worker, relay, Celery or engine)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each ingest attack")
    parser.add_argument("--trigger-rates", type=float, nargs="+", default=[50, 100])
    parser.add_argument("--trigger-seconds", type=int, default=60)
    parser.add_argument(
        "--drain-seconds",
        type=int,
        default=300,
        help="how long after a triggering load to wait for the last first email (printed if not all)",
    )
    parser.add_argument("--parked", type=int, default=100_000, help="runs to park through the engine")
    parser.add_argument(
        "--park-seconds",
        type=int,
        default=180,
        help="stop parking after this long and measure with as many as parked (printed)",
    )
    parser.add_argument("--vegeta", default=os.environ.get("VEGETA", "vegeta"))
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the web and a worker during the triggering load"
    )
    parser.add_argument(
        "--broadcast",
        type=int,
        metavar="N",
        help="only this: one broadcast to N contacts (bench/broadcast.py)",
    )
    args = parser.parse_args()
    if args.ingest:
        args.rounds, args.phases = [Round(workers=0, relay_apart=False)], ["ingest"]
    if args.broadcast:
        broadcast_only(args.broadcast)
        return

    workdir = Path(tempfile.mkdtemp(prefix="hogsend-bench-"))
    vegeta = Vegeta(args.vegeta, workdir)
    sink = Sink()
    runs: list[Run] = []
    for number, round in enumerate(args.rounds):
        say(f"round {number + 1}: {round}; fresh database {DB}")
        reset_database()
        env = {
            **os.environ,
            "DATABASE_URL": DB_URL,
            "DJANGO_SETTINGS_MODULE": "hogsend.settings",
            "HOGSEND_JOURNEY_MODULES": "journeys.shipped,bench.journeys",
            "HATCHET_CLIENT_NAMESPACE": f"bench{uuid.uuid4().hex[:6]}_",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "INGEST_RATE_LIMIT_REQUESTS": "0",
            "INGEST_RATE_LIMIT_EVENTS": "0",
            "LOG_LEVEL": "WARNING",
            # Production settings: DEBUG would record every query in memory.
            "DEBUG": os.environ.get("DEBUG", "false"),
        }
        if round.start_mode:
            env["ENGINE_START_MODE"] = round.start_mode
        else:
            env.pop("ENGINE_START_MODE", None)
        engine_restart(lean=round.lean_engine)
        env.pop("PGAPPNAME", None)
        os.environ.update(env)
        os.environ["PGAPPNAME"] = BENCH_APP_NAME  # this process's own connections only
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from contacts.services import api_key_create

        _, key = api_key_create(name="bench", scopes=["ingest"])
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(FLOOR_TABLE)
        logs = workdir / f"round-{number + 1}"
        logs.mkdir()
        product = Product(workers=round.workers, relay_apart=round.relay_apart, env=env, logs=logs)
        product.start()
        run = Run(args, vegeta, round, workdir, round_phases(args.phases, number))
        try:
            run.measure(product, key)
        finally:
            stopping = time.monotonic()
            product.stop()
            run.figure(
                "all processes stopped after SIGTERM in, s",
                f"{time.monotonic() - stopping:.1f}",
                "goal <= 30",
            )
            from django.db import connections

            connections.close_all()
        runs.append(run)

    print(f"\nHogsend bench — {os.cpu_count()} cores; logs in {workdir}\n")
    for run in runs:
        print(f"## {run.round}")
        for name, value, goal in run.figures:
            print(f"  {name:<62} {value:<28} {goal}")
        print()
    compare(runs)
    summary_table(runs)
    engine_restart(lean=False)
    sink.controller.stop()
    shutil.rmtree(workdir / "targets", ignore_errors=True)


def broadcast_only(recipients: int) -> None:
    from bench.broadcast import run_broadcast

    workdir = Path(tempfile.mkdtemp(prefix="hogsend-bench-"))
    sink = Sink()
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "DJANGO_SETTINGS_MODULE": "hogsend.settings",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        "LOG_LEVEL": "WARNING",
        "DEBUG": os.environ.get("DEBUG", "false"),
    }
    env.pop("PGAPPNAME", None)
    figures = run_broadcast(recipients=recipients, workdir=workdir, sink=sink, env=env)
    print(f"\nHogsend bench — broadcast; {os.cpu_count()} cores; logs in {workdir}\n")
    for name, value, goal in figures:
        print(f"  {name:<62} {value:<28} {goal}")
    sink.controller.stop()


def summary_table(runs: list[Run]) -> None:
    """One line per round and triggering rate, each goal's figure beside the goal; then the rounds
    against each other, ingest and parked runs."""
    rows = [(run, label) for run in runs for label in run.cpu]
    if rows:
        print("## Summary (CPU ms per journey start; latency from the event reaching the API)")
        print(
            f"  {'round':<58} {'rate':>6} {'ours':>6} {'engine':>7} {'celery':>7} "
            f"{'starts/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'drain s':>8} {'missing':>8}"
        )
        for run, label in rows:
            per, lat = run.cpu[label], run.summary.get(label, {})
            print(
                f"  {run.round!s:<58} {label:>6} {_ours(per):6.2f} {_engine(per):7.2f} "
                f"{sum(per.get(n, 0.0) for n in BACKGROUND):7.2f} "
                f"{lat.get('starts/s', float('nan')):9.1f} {lat.get('p50 ms', float('nan')):8.0f} "
                f"{lat.get('p99 ms', float('nan')):8.0f} {lat.get('drain s', float('nan')):8.0f} "
                f"{lat.get('missing', float('nan')):8.0f}"
            )
        print(
            "  goals: ours <= 10 (aim 6) and below the engine; 50/s every first email, p99 <= 1000 ms;"
            " 100/s every email, drained within 60 s"
        )
        base = next((r for r in runs if r.round.workers == 1 and not r.round.relay_apart), None)
        for other, what in (
            (
                next((r for r in runs if r.round.workers == 2 and not r.round.relay_apart), None),
                "two workers vs one",
            ),
            (
                next((r for r in runs if r.round.workers == 1 and r.round.relay_apart), None),
                "relay apart vs inside",
            ),
        ):
            if not base or not other:
                continue
            for label in base.cpu:
                if label not in other.cpu:
                    continue
                a, b = base.summary.get(label, {}), other.summary.get(label, {})
                print(
                    f"  {what} at {label}: ours {_ours(other.cpu[label]):.2f} vs {_ours(base.cpu[label]):.2f} ms/start, "
                    f"engine {_engine(other.cpu[label]):.2f} vs {_engine(base.cpu[label]):.2f}, "
                    f"starts/s {b.get('starts/s', float('nan')):.1f} vs {a.get('starts/s', float('nan')):.1f}, "
                    f"p99 {b.get('p99 ms', float('nan')):.0f} vs {a.get('p99 ms', float('nan')):.0f} ms "
                    "(the same 2-core box: expect little)"
                )
    for run in runs:
        if "ingest" in run.summary:
            i = run.summary["ingest"]
            print(
                f"  ingest: floor {i['floor/s']:.0f}/s, single {i['single/s']:.0f}/s "
                f"({i['single/s'] / max(i['floor/s'], 1e-9):.2f} x floor, goal >= 0.5), known contacts "
                f"{i['known/s']:.0f}/s, p99 at half max {i['half p99 ms']:.1f} ms (goal <= 50), batches "
                f"{i['batch/s']:.0f} events/s (goal >= 10,000); CPU ms/event single {i['single ms/event']:.2f}, "
                f"batch {i['batch ms/event']:.2f}"
            )
        if "parked" in run.summary:
            k = run.summary["parked"]
            print(
                f"  parked: {k['parked']:,.0f} parked at {k['parking runs/s']:.1f} runs/s; wake-up p99 "
                f"{k['wake p99 parked ms']:.0f} ms parked vs {k['wake p99 none ms']:.0f} ms none "
                f"(goal <= 1.5 x); exit cost {k['exit ratio']:.2f} x at {k['parked']:,.0f} vs 1,000 (goal flat)"
            )
    print(f"  load average (1 / 5 / 15 min) at the end {load_average()}\n")


def _ours(per: dict[str, float]) -> float:
    return sum(per.get(n, 0.0) for n in OURS)


def _engine(per: dict[str, float]) -> float:
    return sum(per.get(n, 0.0) for n in ENGINE)


def compare(runs: list[Run]) -> None:
    """The rounds side by side: CPU ms per start of each component, at each triggering rate."""
    labels = [label for label in runs[0].cpu] if runs and runs[0].cpu else []
    if len(runs) < 2 or not labels:
        return
    print("## CPU ms per journey start, round by round")
    for label in labels:
        names = [n for n in (*OURS, *BACKGROUND, *ENGINE) if any(n in r.cpu.get(label, {}) for r in runs)]
        print(f"  at {label}: " + " | ".join(str(r.round) for r in runs))
        for name in names:
            cells = [f"{r.cpu.get(label, {}).get(name, 0.0):8.2f}" for r in runs]
            print(f"    {name:<22} " + " | ".join(cells))
        for title, group in (("ours", OURS), ("engine", ENGINE)):
            cells = [f"{sum(r.cpu.get(label, {}).get(n, 0.0) for n in group):8.2f}" for r in runs]
            print(f"    {title + ' (total)':<22} " + " | ".join(cells))
    print()


if __name__ == "__main__":
    main()
