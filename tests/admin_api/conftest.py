from __future__ import annotations

import json
import sys
import types
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact
from contacts.services import api_key_create
from journeys.dispatch import install_dispatcher
from journeys.models import JourneyRun


class Client:
    """The Django test client speaking JSON with one bearer key (or none)."""

    def __init__(self, client, secret: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def request(self, method: str, path: str, body=None):
        return self.client.generic(
            method.upper(),
            path,
            data=b"" if body is None else json.dumps(body),
            content_type="application/json",
            headers=self.headers,
        )

    def get(self, path: str):
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, body=None):
        return self.request("POST", path, body if body is not None else {})

    def delete(self, path: str):
        return self.request("DELETE", path)


@pytest.fixture
def admin(client, db) -> Client:
    _, secret = api_key_create(name="ops", scopes=["admin"])
    return Client(client, secret)


@pytest.fixture
def ingest_only(client, db) -> Client:
    _, secret = api_key_create(name="app", scopes=["ingest", "read"])
    return Client(client, secret)


@pytest.fixture
def anonymous(client, db) -> Client:
    return Client(client, None)


class FakeEngine(types.ModuleType):
    """Stands in for journeys.runtime.engine: records what the web side asks of Hatchet."""

    def __init__(self) -> None:
        super().__init__("journeys.runtime.engine")
        self.cancelled: list = []
        self.retried: list = []

    def engine_cancel_runs(self, *, run_ids):
        self.cancelled.extend(run_ids)

    def engine_retry_run(self, *, run_id):
        self.retried.append(run_id)


@pytest.fixture
def engine(monkeypatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setitem(sys.modules, "journeys.runtime.engine", fake)
    previous = install_dispatcher(None)  # the default dispatcher: commands go to the engine module
    yield fake
    install_dispatcher(previous)


def make_run(contact: Contact, journey_id: str, status: str, *, node: str = "", minutes_ago: int = 0, **kw):
    now = timezone.now() - timedelta(minutes=minutes_ago)
    ended = status in ("completed", "failed", "exited")
    return JourneyRun.objects.create(
        journey_id=journey_id,
        contact=contact,
        status=status,
        current_node=node,
        entered_at=now,
        ended_at=now if ended else None,
        **kw,
    )


@pytest.fixture
def runs(db) -> dict:
    ada = Contact.objects.create(user_id="ada", email="ada@example.com")
    bob = Contact.objects.create(user_id="bob", email="bob@example.com")
    return {
        "ada": ada,
        "bob": bob,
        "waiting": make_run(ada, "activation-welcome", "waiting", node="post-welcome", minutes_ago=1),
        "completed": make_run(bob, "activation-welcome", "completed", node="done", minutes_ago=2),
        "failed": make_run(
            bob, "churn-prevention", "failed", node="first-retry", minutes_ago=3, error="TimeoutError"
        ),
        "active": make_run(ada, "churn-prevention", "active", minutes_ago=4),
    }
