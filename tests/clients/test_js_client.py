"""The TypeScript client's own tests (`npm ci && npm test` in clients/js), run against the running
server and the fault proxy in front of it, with real keys."""

from __future__ import annotations

import os
import re

import pytest

from contacts.services import api_key_create
from tests.clients.contract import load_contract
from tests.clients.node import npm

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_typescript_client_passes_its_tests_against_the_running_server(
    js_package, live_server, proxy, api_key
):
    _, ingest_only = api_key_create(name="ingest only", scopes=["ingest"])
    env = {
        **os.environ,
        "HOGSEND_BASE_URL": live_server.url,
        "HOGSEND_PROXY_URL": proxy.url,
        "HOGSEND_API_KEY": api_key,
        "HOGSEND_INGEST_ONLY_KEY": ingest_only,
    }

    run = npm("test", env=env)

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    # Whatever the TypeScript client sent is in the contract the OpenAPI document is checked against.
    contract = load_contract()["operations"]
    event_fields = set(contract["POST /v1/events"]["request"])
    for entry in proxy.log:
        body = entry["body"] or {}
        if entry["path"] == "/v1/events":
            assert set(body) <= event_fields, body
        elif entry["path"] == "/v1/events/batch":
            assert set(body) == {"events"} and all(set(item) <= event_fields for item in body["events"])
    passed = re.search(r"^# pass (\d+)$", run.stdout, flags=re.M)
    assert "# fail 0" in run.stdout and passed and int(passed.group(1)) >= 9, run.stdout[-3000:]
