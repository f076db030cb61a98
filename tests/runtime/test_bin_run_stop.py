"""One Ctrl-C stops everything `bin/run` started: the web, the journey worker and Celery (with its
pool children and beat), within a bounded time, leaving no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, wait_until

pytestmark = pytest.mark.engine


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc (whatever session or group it moved to)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


@contextmanager
def sigint_as_a_terminal_gives_it():
    """Spawn with SIGINT at its default, as a shell at a terminal hands it to a foreground job.

    A signal ignored when bash starts cannot be trapped (bash(1), "SIGNALS"), and the suite may
    well run with SIGINT ignored: a non-interactive shell starts its background jobs so, and
    nohup or a CI runner may too. bin/run would then never see the Ctrl-C this test sends. A
    Python handler is reset to the default across exec, an ignored signal is not."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    unblocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        signal.signal(signal.SIGINT, previous)


def redis_stop() -> None:
    from django.conf import settings

    port = settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0]
    subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True, timeout=30)


@pytest.mark.parametrize("redis", ["up", "stopped first"])
def test_one_ctrl_c_stops_web_worker_and_celery_and_leaves_nothing_running(engine, tmp_path, redis):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "STOP_SECONDS": "25"}
    for key in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE"):
        env.pop(key, None)
    log_path = tmp_path / "run.log"
    log = open(log_path, "wb")
    # A session of its own, as a terminal gives a foreground job: the signal goes to the group.
    with sigint_as_a_terminal_gives_it():
        proc = subprocess.Popen(
            [str(ROOT / "bin" / "run")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: proc.poll() is not None or b"Hogsend is up" in log_path.read_bytes(),
            timeout=600, interval=1, what="bin/run to come up",
        )  # fmt: skip
        assert proc.poll() is None, log_path.read_text()[-3000:]

        def processes() -> dict[int, str]:
            return {pid: command_of(pid) for pid in descendants(proc.pid)}

        # Celery's pool children and gunicorn's workers are up too.
        started = wait_until(
            lambda: (p := processes())
            and sum("celery" in c for c in p.values()) >= 3
            and sum("gunicorn" in c for c in p.values()) >= 3
            and p,
            timeout=120, interval=0.5, what="Celery's pool and gunicorn's workers",
        )  # fmt: skip
        assert any("runworker" in c for c in started.values()), started

        if redis == "stopped first":
            redis_stop()  # Celery and the worker now retry a broker that is gone
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        # bin/run promises 25 s plus its own exit; the wait is generous for a loaded machine.
        proc.wait(timeout=120)
        wait_until(
            lambda: not [pid for pid in started if alive(pid)],
            timeout=30, interval=0.2, what=f"the processes bin/run started to end: {started}",
        )  # fmt: skip
        assert proc.returncode == 0, log_path.read_text(errors="replace")[-3000:]
    finally:
        leftovers = descendants(proc.pid) | {pid for pid in locals().get("started", {}) if alive(pid)}
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        if redis == "stopped first":
            subprocess.run([str(ROOT / "bin" / "services")], check=True, timeout=120)
