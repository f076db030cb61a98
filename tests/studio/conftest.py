from __future__ import annotations

import sys
import types
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact
from journeys.durations import days
from journeys.models import JourneyRun
from journeys.shipped.constants import Events
from tests.broadcasts.conftest import people, smtp_server  # noqa: F401  (fixtures for the broadcast pages)


def make_studio_data(harness) -> dict:
    """Realistic runs through the real pipeline: one completed, one parked in a sleep, one parked in
    a wait (with triggers), plus a failed run written directly (the harness does not fail runs)."""
    harness.emit(
        Events.USER_CREATED, user_id="bob", email="bob@example.com", contact_properties={"first_name": "Bob"}
    )
    harness.advance(days(2))
    harness.emit(
        Events.USER_CREATED,
        user_id="ada",
        email="ada@example.com",
        contact_properties={"first_name": "Ada", "plan": "pro"},
    )
    harness.emit(
        Events.USER_SIGNED_UP, user_id="cy", email="cy@example.com", properties={"plan": "enterprise"}
    )
    dan, _ = Contact.objects.get_or_create(user_id="dan", defaults={"email": "dan@example.com"})
    failed = JourneyRun.objects.create(
        journey_id="churn-prevention",
        contact=dan,
        status=JourneyRun.Status.FAILED,
        current_node="first-retry",
        entered_at=timezone.now() - timedelta(hours=3),
        ended_at=timezone.now(),
        error="Traceback (most recent call last):\nTimeoutError: provider down",
        engine_run_id="eng-failed-1",
    )
    return {
        "completed": harness.run("activation-welcome", "bob"),
        "sleeping": harness.run("activation-welcome", "ada"),
        "waiting": harness.run("concierge-onboarding", "cy"),
        "failed": failed,
        "ada": Contact.objects.get(user_id="ada"),
    }


@pytest.fixture
def studio_data(journey_harness) -> dict:
    return make_studio_data(journey_harness)


class FakeEngine(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("journeys.runtime.engine")
        self.cancelled: list = []
        self.retried: list = []

    def engine_cancel_runs(self, *, run_ids):
        self.cancelled.extend(run_ids)

    def engine_retry_run(self, *, run_id):
        self.retried.append(run_id)


@pytest.fixture
def engine_after_commit(transactional_db, journey_harness):
    """Operator actions reach the engine after commit: let commits happen, and put the default
    dispatcher back in front of the harness (which would otherwise play the engine itself)."""
    from journeys.dispatch import install_dispatcher

    previous = install_dispatcher(None)
    yield
    install_dispatcher(previous)


@pytest.fixture
def fake_engine(monkeypatch, engine_after_commit) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setitem(sys.modules, "journeys.runtime.engine", engine)
    return engine


@pytest.fixture
def no_engine(monkeypatch, engine_after_commit) -> None:
    """The engine module cannot be imported (None in sys.modules makes the import fail)."""
    monkeypatch.setitem(sys.modules, "journeys.runtime.engine", None)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
