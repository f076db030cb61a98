"""Thin Celery tasks around contact and event services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="contacts.events_redispatch", ignore_result=True)
def events_redispatch() -> int:
    """The outbox sweep: push events that have not reached the engine yet."""
    from journeys.runtime.engine import events_redispatch as redispatch

    return redispatch()
