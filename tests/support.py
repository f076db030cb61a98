"""Small helpers the test packages share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
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


def in_thread(fn, errors: list) -> threading.Thread:
    """Run `fn` on a thread of its own (its own database connection, closed after); an exception
    it raises lands in `errors` for the test to assert on."""

    def run():
        from django.db import connections

        try:
            fn()
        except Exception as error:  # surfaced by the test
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """A running web process: its base URL and the log it writes."""

    def __init__(self, url: str, log_path: Path, env: dict[str, str]) -> None:
        self.url = url
        self.log_path = log_path
        self.env = env

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def gunicorn_server(workdir: Path, *, static_root: Path, **env: str) -> Iterator[WebServer]:
    """The web process as `bin/run` starts it — gunicorn with hogsend/gunicorn.conf.py, DEBUG off,
    static files collected into `static_root` and served by WhiteNoise — on the test database and
    Redis, with `env` on top. Stopped with SIGTERM (the graceful stop) afterwards."""
    import httpx
    from django.conf import settings

    db = settings.DATABASES["default"]
    port = free_port()
    (workdir / "metrics").mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hogsend.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        # Jobs the pages enqueue land in a broker database of their own, out of the way of the
        # Celery workers other tests start.
        "CELERY_BROKER_URL": settings.REDIS_URL.rsplit("/", 1)[0] + "/15",
        "STATIC_ROOT": str(static_root),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "PORT": str(port),
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "WEB_ACCESS_LOG": "-",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    full_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log_path = workdir / "gunicorn.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", "hogsend/gunicorn.conf.py", "hogsend.wsgi"],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = WebServer(url, log_path, full_env)

        def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"gunicorn exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                return httpx.get(f"{url}/admin/login/", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(answers, timeout=60, interval=0.2, what=f"gunicorn on {url}")
            yield server
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
