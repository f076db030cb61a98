"""Where accepted events and exits go once they are stored: the engine, or the test harness.

The ingest pipeline calls `dispatcher().after_ingest(...)` inside its transaction. The Hatchet
dispatcher defers the push until commit (the event row is the outbox); the virtual-time harness
installs itself here to play the engine's part in-process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID


class Dispatcher(Protocol):
    def after_ingest(self, *, event_ids: Sequence[UUID], exited_run_ids: Sequence[UUID]) -> None: ...


_installed: Dispatcher | None = None


def dispatcher() -> Dispatcher:
    global _installed
    if _installed is None:
        from journeys.runtime.outbox import EngineDispatcher

        _installed = EngineDispatcher()
    return _installed


def install_dispatcher(new: Dispatcher | None) -> Dispatcher | None:
    """Swap the dispatcher (the harness does); returns the previous one to restore later."""
    global _installed
    previous, _installed = _installed, new
    return previous
