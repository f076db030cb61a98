"""Every /v1/admin endpoint, read from the OpenAPI document, is refused without the admin scope."""

from __future__ import annotations

import re
import uuid

import pytest

from hogsend.api import api

SAMPLE = {
    "run_id": str(uuid.uuid4()),
    "journey_id": "activation-welcome",
    "key": "ada",
    "email": "a@example.com",
    "destination_id": "1",
    "delivery_id": str(uuid.uuid4()),
    "broadcast_id": str(uuid.uuid4()),
}


def admin_operations() -> list[tuple[str, str]]:
    paths = api.get_openapi_schema()["paths"]
    return [
        (method.upper(), re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path))
        for path, operations in paths.items()
        if path.startswith("/v1/admin/")
        for method in operations
    ]


OPERATIONS = admin_operations()


def test_the_admin_api_is_in_the_openapi_docs_with_every_documented_endpoint():
    documented = {path for _, path in OPERATIONS}
    for expected in ("/runs", "/journeys/activation-welcome/enroll", "/suppressions", "/contacts/export"):
        assert f"/v1/admin{expected}" in documented
    assert len(OPERATIONS) >= 12


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_an_admin_endpoint_without_a_key_is_401(anonymous, method, path):
    response = anonymous.request(method, path, {})
    assert response.status_code == 401
    assert "Authorization" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_an_admin_endpoint_with_an_ingest_and_read_key_is_403(ingest_only, method, path):
    response = ingest_only.request(method, path, {})
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_an_admin_key_gets_past_the_gate(admin, method, path):
    assert admin.request(method, path, {}).status_code not in (401, 403)
