"""The outbox: stored events reach the engine after commit, and again until they do."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from django.db import transaction

logger = logging.getLogger(__name__)


class EngineDispatcher:
    """Pushes events to Hatchet and cancels exited runs, once the ingest transaction commits.

    A push that fails leaves the event `pending`; the periodic redispatch retries it, so an
    event accepted while the engine is down still reaches its journeys.
    """

    def after_ingest(self, *, event_ids: Sequence[UUID], exited_run_ids: Sequence[UUID]) -> None:
        event_ids, exited_run_ids = list(event_ids), list(exited_run_ids)

        def push() -> None:
            from journeys.runtime.engine import engine_cancel_runs, engine_push_events

            if exited_run_ids:
                engine_cancel_runs(run_ids=exited_run_ids)
            engine_push_events(event_ids=event_ids)

        transaction.on_commit(push)
