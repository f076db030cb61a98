"""The outbox relay: stored events reach the engine after commit, and again until they do.

Ingest only stores rows and NOTIFYs; this loop LISTENs, claims pending rows in batches
(`contacts.outbox.outbox_relay_batch`, `SKIP LOCKED`, so any number of relays can run), pushes
the ones the engine needs in bulk, and cancels the engine runs that ingested events exited. It
runs as a thread of every `runworker` (and alone as `manage.py relay`); it also wakes every
`poll` seconds, so an event whose NOTIFY was lost still goes out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection

from contacts.outbox import OUTBOX_CHANNEL, OutboxItem, RelayBatch, outbox_relay_batch
from journeys.registry import registry

logger = logging.getLogger(__name__)
# Who hears of each settled batch (the operations app installs its metrics at start-up): a seam,
# so the relay never imports what counts it.
_batch_observers: list[Callable[[RelayBatch], Any]] = []


def batch_observer_install(observe: Callable[[RelayBatch], Any]) -> None:
    if observe not in _batch_observers:
        _batch_observers.append(observe)


class OutboxRelay:
    """Settles pending outbox rows; `drain()` is one unit of work that tests and the sweep call."""

    def __init__(self, *, batch_size: int = 500) -> None:
        self.batch_size = batch_size

    def wanted(self, name: str) -> bool:
        """Something registered in this process starts on `name`: a journey or a custom task."""
        return bool(registry.triggered_by(name) or registry.tasks_for(name))

    def deliver(self, items: list[OutboxItem]) -> None:
        from journeys.runtime.engine import engine_deliver

        engine_deliver(items)

    def cancel(self, run_ids: list[UUID]) -> None:
        from journeys.runtime.engine import engine_cancel_runs

        engine_cancel_runs(run_ids=run_ids)

    def batch(self) -> RelayBatch:
        result = outbox_relay_batch(
            wanted=self.wanted, deliver=self.deliver, cancel=self.cancel, limit=self.batch_size
        )
        for observe in _batch_observers:
            observe(result)
        return result

    def drain(self, *, max_events: int = 100_000) -> int:
        """Settle batches until nothing is pending (or a push fails); returns how many were pushed."""
        pushed = settled = 0
        while settled < max_events:
            result = self.batch()
            pushed += result.pushed
            settled += result.claimed
            if result.error or result.claimed < self.batch_size:
                break
        return pushed


class RelayThread(threading.Thread):
    """The relay loop on its own thread and database connections; `stop()` ends it promptly."""

    def __init__(self, *, poll: float | None = None, batch_size: int = 500) -> None:
        super().__init__(name="hogsend-outbox-relay", daemon=True)
        self.relay = OutboxRelay(batch_size=batch_size)
        self.poll = poll if poll is not None else settings.OUTBOX_RELAY_POLL_SECONDS
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        backoff = 0.5
        while not self.stopped.is_set():
            try:
                self._listen_and_relay()
                backoff = 0.5
            except Exception as error:
                logger.warning("outbox relay: %s; retrying in %.1fs", error, backoff)
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, 10)
            finally:
                connection.close()

    def _listen_and_relay(self) -> None:
        params = connection.get_connection_params()
        with psycopg.connect(**params, autocommit=True) as listener:
            listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
            while not self.stopped.is_set():
                close_old_connections()
                result = self._settle()
                if result.error:
                    self.stopped.wait(1.0)  # the engine refused a push: let it breathe
                    continue
                if result.claimed >= self.relay.batch_size:
                    continue  # more is waiting; the notifications queued meanwhile are drained below
                self._wait_for_notify(listener)

    def _wait_for_notify(self, listener: psycopg.Connection) -> None:
        """Sleep until the next NOTIFY, the poll interval, or `stop()`; then drain every queued
        notification: one pass settles all the events they announced."""
        deadline = time.monotonic() + self.poll
        while not self.stopped.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if any(True for _ in listener.notifies(timeout=min(remaining, 0.5), stop_after=1)):
                break
        for _ in listener.notifies(timeout=0.001):
            pass

    def _settle(self) -> RelayBatch:
        started = time.monotonic()
        result = self.relay.batch()
        if result.claimed:
            logger.debug(
                "outbox relay: %d claimed, %d pushed, %d skipped, %d quarantined in %.0f ms",
                result.claimed,
                result.pushed,
                result.skipped,
                result.quarantined,
                (time.monotonic() - started) * 1000,
            )
        return result
