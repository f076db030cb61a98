"""The connection to the Hatchet engine, and the few things the web side asks of it.

Where the engine is, in order of precedence:
1. `HATCHET_CLIENT_TOKEN` (Hatchet Cloud or a self-hosted engine): the SDK reads every
   `HATCHET_CLIENT_*` setting from the environment, exactly as Hatchet documents.
2. `HATCHET_CLIENT_EMBEDDED_BINARY_PATH` or `HOGSEND_ENGINE=embedded`: `Hatchet.from_embedded()`,
   the SDK's sidecar engine, owned by this process.
3. Otherwise the project's local engine: `bin/engine start` owns it and writes its connection to
   `HOGSEND_ENGINE_FILE` (.run/engine.json); every process connects to it as a plain client.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from django.conf import settings

from contacts.outbox import OutboxItem

logger = logging.getLogger(__name__)
_client = None
_client_lock = threading.Lock()


class EngineUnavailable(RuntimeError):
    """No engine is configured or reachable; events stay in the outbox until one is."""


def hatchet_client():  # -> hatchet_sdk.Hatchet
    """The process-wide Hatchet client (created on first use)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = _connect()
        return _client


def reset_client() -> None:
    """Forget the client (tests; or after the engine file changed)."""
    global _client
    with _client_lock:
        _client = None


def _connect():
    from hatchet_sdk import ClientConfig, Hatchet
    from hatchet_sdk.config import ClientTLSConfig

    from journeys.runtime.sdk_logging import sdk_logging_configure

    sdk_logging_configure(task_lines=settings.HATCHET_TASK_LOG)
    if settings.HATCHET_CLIENT_TOKEN or os.environ.get("HATCHET_CLIENT_TOKEN"):
        return Hatchet()
    if (
        os.environ.get("HATCHET_CLIENT_EMBEDDED_BINARY_PATH")
        or os.environ.get("HOGSEND_ENGINE") == "embedded"
    ):
        return Hatchet.from_embedded()
    path = settings.HOGSEND_ENGINE_FILE
    try:
        connection = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EngineUnavailable(
            f"no engine connection at {path} ({error}); start one with `bin/engine start`, "
            "or set HATCHET_CLIENT_TOKEN for Hatchet Cloud or a self-hosted engine"
        ) from None
    return Hatchet(
        config=ClientConfig(
            token=connection["token"],
            host_port=connection["host_port"],
            server_url=connection["server_url"],
            tenant_id=connection["tenant_id"],
            tls_config=ClientTLSConfig(strategy="none"),
        )
    )


def journey_task_name(journey: Any) -> str:
    """The engine's name for a journey's durable task (the worker registers it, the relay starts it)."""
    return f"journey-{journey.id}"


def engine_push(items: Sequence[OutboxItem]) -> None:
    """Push claimed outbox events to the engine in bulk; raises if the engine refuses them."""
    from hatchet_sdk.types.trigger import BulkPushEventWithMetadata

    client = hatchet_client()
    batch = [
        BulkPushEventWithMetadata(
            key=item.name,
            payload=item.payload,
            additional_metadata={"hogsend_event_id": str(item.id), "contact_id": str(item.contact_id)},
            # The contact is the scope a wait looks back in (`HatchetBackend.wait_for_event`).
            scope=str(item.contact_id),
        )
        for item in items
    ]
    for start in range(0, len(batch), 500):
        client.event.bulk_push(batch[start : start + 500])


def engine_start_runs(items: Sequence[OutboxItem]) -> int:
    """Create, in bulk, the engine runs these claimed events start: one per journey triggered by
    the event and per custom task listening to it (the SDK's bulk run API, `run_many`'s call).
    Each run's input is what an event push would have handed it; returns how many were created.
    Raises if the engine refuses them."""
    from hatchet_sdk import TriggerWorkflowOptions, WorkflowRunTriggerConfig

    from journeys.registry import registry

    runs = []
    for item in items:
        names = [journey_task_name(j) for j in registry.triggered_by(item.name)]
        names += [task.name for task in registry.tasks_for(item.name)]
        if not names:
            continue
        payload = json.dumps(item.payload)
        metadata = {"hogsend_event_id": str(item.id), "contact_id": str(item.contact_id)}
        runs += [
            WorkflowRunTriggerConfig(
                workflow_name=name,
                input=payload,
                options=TriggerWorkflowOptions(additional_metadata=metadata),
            )
            for name in names
        ]
    if runs:
        hatchet_client().runs.admin_client.run_workflows(workflows=runs)
    return len(runs)


def engine_deliver(items: Sequence[OutboxItem]) -> None:
    """Hand claimed events to the engine the way `ENGINE_START_MODE` says: as runs created in bulk
    (and, for the events a parked wait waits for, a push as well), or as pushed events alone."""
    if settings.ENGINE_START_MODE == "runs":
        engine_start_runs(items)
        awaited = [item for item in items if item.awaited]
        if awaited:
            engine_push(awaited)
    else:
        engine_push(items)


def engine_cancel_runs(*, run_ids: Iterable[UUID]) -> None:
    """Cancel the engine's executions of these journey runs (already marked ended in our DB)."""
    from journeys.models import JourneyRun

    engine_ids = [
        rid
        for rid in JourneyRun.objects.filter(pk__in=list(run_ids)).values_list("engine_run_id", flat=True)
        if rid
    ]
    if not engine_ids:
        return
    try:
        from hatchet_sdk.features.runs import BulkCancelReplayOpts

        hatchet_client().runs.bulk_cancel(BulkCancelReplayOpts(ids=engine_ids))
    except Exception as error:
        logger.warning("engine cancel of %s failed: %s", engine_ids, error)


def engine_retry_run(*, run_id: UUID) -> None:
    """Replay a failed run's engine execution; the step log skips what it already did."""
    from journeys.models import JourneyRun
    from journeys.services import run_retry

    run = JourneyRun.objects.get(pk=run_id)
    run_retry(run_id=run.id)
    if run.engine_run_id:
        hatchet_client().runs.replay(run.engine_run_id)
