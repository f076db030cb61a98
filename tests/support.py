"""Small helpers the test packages share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def celery_process(workdir: Path, *args: str, **env: str) -> Iterator[subprocess.Popen]:
    """A real `celery -A hogsend worker` (solo pool) on the test database and Redis, with `env` on
    top; stopped with SIGTERM afterwards, its log tail printed for a failing test."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    (workdir / "metrics").mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    log_path = workdir / "celery.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hogsend", "worker", "--pool", "solo",
             "--loglevel", "WARNING", *args],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print(log_path.read_text()[-3000:])
