from __future__ import annotations

import pytest

from contacts.services import api_key_create
from tests.clients.faults import FaultProxy


@pytest.fixture
def api_key(transactional_db) -> str:
    """A real secret key with the scopes the clients use (ingest to send, read to look back)."""
    _, secret = api_key_create(name="client tests", scopes=["ingest", "read"])
    return secret


@pytest.fixture
def proxy(live_server):
    """The fault-injecting proxy in front of the running server."""
    with FaultProxy(live_server.url) as running:
        yield running
