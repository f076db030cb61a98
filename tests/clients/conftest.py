from __future__ import annotations

from pathlib import Path

import pytest

from contacts.services import api_key_create
from tests.clients.faults import FaultProxy
from tests.clients.node import PACKAGE, npm


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


@pytest.fixture(scope="session")
def js_package() -> Path:
    """`npm ci` once per session, and only when node_modules is not what package-lock.json says."""
    installed = PACKAGE / "node_modules" / ".package-lock.json"
    lock = PACKAGE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        run = npm("ci", "--no-audit", "--no-fund")
        assert run.returncode == 0, run.stdout + run.stderr
    else:  # npm ci builds dist/ (the package's prepare script); a kept node_modules may hold an old one
        run = npm("run", "build")
        assert run.returncode == 0, run.stdout + run.stderr
    return PACKAGE
