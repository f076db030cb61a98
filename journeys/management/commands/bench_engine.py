"""Measure the product on the real engine: ingest throughput and event-to-email latency.

Run through `bin/bench-engine`, which starts PostgreSQL, Redis and the engine first. This command
starts its own web server and worker against a separate database and prints the figures.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, connections

ROOT = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = "Benchmark ingest throughput and event-to-first-email latency on the real engine."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--single", type=int, default=2000, help="events sent one per request")
        parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 events")
        parser.add_argument("--latency-samples", type=int, default=200)
        parser.add_argument(
            "--parked", type=int, default=10000, help="runs parked before the second latency run"
        )
        parser.add_argument("--port", type=int, default=8765)

    def handle(self, *args: Any, **opts: Any) -> None:
        self.port = opts["port"]
        self.processes: list[subprocess.Popen] = []
        env = self._environment()
        try:
            self._start(env)
            _, secret = self._api_key()
            self.auth = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            single = self._single(opts["single"])
            batch = self._batch(opts["batches"])
            idle = self._latency(opts["latency_samples"], "no runs parked")
            self._park(opts["parked"])
            loaded = self._latency(opts["latency_samples"], f"{opts['parked']:,} runs parked")
        finally:
            for proc in self.processes:
                proc.terminate()
            for proc in self.processes:
                proc.wait(timeout=60)
        self.stdout.write("\n=== Hogsend on Hatchet: results ===")
        self.stdout.write(f"POST /v1/events        {single:8.0f} events/s")
        self.stdout.write(f"POST /v1/events/batch  {batch:8.0f} events/s")
        for label, (median, p99) in (("no runs parked", idle), (f"{opts['parked']:,} runs parked", loaded)):
            self.stdout.write(f"event → first email, {label}: median {median:.0f} ms, p99 {p99:.0f} ms")

    # --- processes ---------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        db = settings.DATABASES["default"]
        name = "hogsend_bench_engine"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone():
                connections.close_all()
                with connection.cursor() as c2:
                    c2.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            with connection.cursor() as c3:
                c3.execute(f'CREATE DATABASE "{name}"')
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "HOGSEND_JOURNEY_MODULES": "journeys.bench",
            "HATCHET_CLIENT_NAMESPACE": f"bench{uuid.uuid4().hex[:6]}_",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "LOG_LEVEL": "WARNING",
        }
        self.stdout.write("migrating the benchmark database …")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        os.environ.update({k: env[k] for k in ("HATCHET_CLIENT_NAMESPACE",)})
        settings.DATABASES["default"]["NAME"] = name
        connections.close_all()
        return env

    def _start(self, env: dict[str, str]) -> None:
        logs = ROOT / ".run" / "bench"
        logs.mkdir(parents=True, exist_ok=True)
        web = [
            sys.executable,
            "-m",
            "uvicorn",
            "hogsend.asgi:application",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--workers",
            "2",
        ]
        worker = [sys.executable, "manage.py", "runworker"]
        for name, cmd in (("web", web), ("worker", worker)):
            out = open(logs / f"{name}.log", "wb")
            self.processes.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self._request("GET", "/v1/health", None, {})[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(3)  # let the worker register its tasks with the engine
        self.stdout.write("web and worker are up")

    def _api_key(self):
        from contacts.services import api_key_create

        return api_key_create(name="bench", scopes=["ingest", "read"])

    # --- HTTP --------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _post_event(self, event: dict[str, Any]) -> int:
        return self._request("POST", "/v1/events", event, self.auth)[0]

    def _single(self, count: int) -> float:
        events = [{"name": "bench.noop", "userId": f"tp-{i % 500}"} for i in range(count)]
        began = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(self._post_event, events))
        rate = count / (time.perf_counter() - began)
        assert all(c == 202 for c in codes), set(codes)
        self.stdout.write(f"single: {count} events, {rate:.0f}/s")
        return rate

    def _batch(self, batches: int) -> float:
        began = time.perf_counter()
        for b in range(batches):
            events = [{"name": "bench.noop", "userId": f"tb-{b}-{i % 100}"} for i in range(1000)]
            status, _ = self._request("POST", "/v1/events/batch", {"events": events}, self.auth)
            assert status == 202, status
        rate = batches * 1000 / (time.perf_counter() - began)
        self.stdout.write(f"batch: {batches} x 1,000 events, {rate:.0f}/s")
        return rate

    # --- latency -----------------------------------------------------------------------------

    def _latency(self, samples: int, label: str) -> tuple[float, float]:
        from emails.models import EmailLog

        tag = uuid.uuid4().hex[:6]
        sent_at = {}
        for i in range(samples):
            user = f"lat-{tag}-{i}"
            sent_at[user] = time.time()
            assert (
                self._post_event({"name": "bench.signup", "userId": user, "userEmail": f"{user}@example.com"})
                == 202
            )
            time.sleep(0.02)
        deadline = time.monotonic() + 300
        latencies: dict[str, float] = {}
        while len(latencies) < samples and time.monotonic() < deadline:
            for user_id, created in EmailLog.objects.filter(contact__user_id__in=list(sent_at)).values_list(
                "contact__user_id", "created_at"
            ):
                latencies.setdefault(user_id, (created.timestamp() - sent_at[user_id]) * 1000)
            time.sleep(0.5)
        values = sorted(latencies.values())
        if len(values) < samples:
            self.stdout.write(f"warning: only {len(values)}/{samples} emails arrived")
        median = statistics.median(values)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        self.stdout.write(
            f"latency ({label}): median {median:.0f} ms, p99 {p99:.0f} ms over {len(values)} events"
        )
        return median, p99

    def _park(self, count: int) -> None:
        from journeys.models import JourneyRun

        self.stdout.write(f"parking {count:,} runs …")
        for start in range(0, count, 1000):
            events = [
                {"name": "bench.park", "userId": f"park-{i}"} for i in range(start, min(count, start + 1000))
            ]
            assert self._request("POST", "/v1/events/batch", {"events": events}, self.auth)[0] == 202
        deadline = time.monotonic() + 900
        last = -1
        while time.monotonic() < deadline:
            parked = JourneyRun.objects.filter(journey_id="bench-park", status="waiting").count()
            if parked != last:
                self.stdout.write(f"  {parked:,}/{count:,} parked")
                last = parked
            if parked >= count:
                return
            time.sleep(2)
        self.stdout.write(f"warning: only {last:,} runs parked after 15 minutes")
