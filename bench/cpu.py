"""CPU time per component, read from /proc: what `bin/bench` divides by the journeys started.

A component is a set of process trees (the web's gunicorn master and its workers, a `runworker`
and whatever it spawned, the engine) or the PostgreSQL backends connected to one database. A
process's own `utime + stime` plus what its reaped children used (`cutime + cstime`) is
continuous across a child's exit, so summing that over a live tree never loses a finished child.
Backends are the postmaster's children, so they are sampled one by one (`pg_stat_activity` names
each backend's database): a backend's time counts from its first sighting in the window to its
last, and the sampling interval bounds what a backend that exits mid-window can hide. The
postmaster's whole tree is measured as well, so what no database owns (WAL writer,
checkpointer, autovacuum, backends gone between samples) is printed rather than lost.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children), or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICK


def _own_stat(pid: int) -> float | None:
    """CPU seconds of the process alone (a backend: the postmaster reaps it, not its parent)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _all_parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[0]
    return parents


def tree_seconds(roots: Iterable[int]) -> float:
    """CPU seconds used so far by these processes, their live descendants and reaped children."""
    parents = _all_parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    total, seen, todo = 0.0, set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stat = _stat(pid)
        if stat is not None:
            total += stat[1]
        todo.extend(children.get(pid, []))
    return total


class CpuMeter:
    """Measures a window: `start()`, the load, `stop()`; then `seconds` holds each component.

    `trees` names process trees by root pid; `databases` names PostgreSQL databases whose
    backends count as a component; `postmaster` is the server's pid (for the unattributed rest).
    `sample_sql` returns `(pid, datname)` rows; it must run on a connection excluded from every
    component (`own_pid`).
    """

    def __init__(
        self,
        *,
        trees: dict[str, list[int]],
        databases: dict[str, str],
        postmaster: int | None,
        sample_sql,
        own_pid: int | None,
        interval: float = 0.25,
    ) -> None:
        self.trees = trees
        self.databases = databases
        self.postmaster = postmaster
        self.sample_sql = sample_sql
        self.own_pid = own_pid
        self.interval = interval
        self.seconds: dict[str, float] = {}
        self._first: dict[int, tuple[str, float]] = {}
        self._last: dict[int, float] = {}
        self._tree_start: dict[str, float] = {}
        self._pg_start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample_backends(self) -> None:
        by_db = {name: label for label, name in self.databases.items()}
        for pid, datname in self.sample_sql():
            if pid == self.own_pid or datname not in by_db:
                continue
            cpu = _own_stat(pid)
            if cpu is None:
                continue
            if pid not in self._first:
                # A backend first seen inside the window was (almost always) born inside it.
                self._first[pid] = (by_db[datname], 0.0 if self._started else cpu)
            self._last[pid] = cpu

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample_backends()

    def start(self) -> None:
        self._started = False
        self._sample_backends()
        self._started = True
        self._tree_start = {label: tree_seconds(pids) for label, pids in self.trees.items()}
        self._pg_start = tree_seconds([self.postmaster]) if self.postmaster else 0.0
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bench-cpu-meter")
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample_backends()
        for label, pids in self.trees.items():
            self.seconds[label] = tree_seconds(pids) - self._tree_start[label]
        per_db = dict.fromkeys(self.databases, 0.0)
        for pid, (label, first) in self._first.items():
            per_db[label] += self._last[pid] - first
        self.seconds.update(per_db)
        if self.postmaster:
            whole = tree_seconds([self.postmaster]) - self._pg_start
            self.seconds["postgres (no database: background, exited backends)"] = max(
                whole - sum(per_db.values()), 0.0
            )
        return self.seconds
