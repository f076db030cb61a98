"""A change to the OpenAPI document that would break a client fails here, with what breaks."""

from __future__ import annotations

import copy

import pytest
from hogsend_client import _core

from tests.clients.contract import contract_problems, load_contract


@pytest.fixture
def document(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_servers_openapi_document_has_everything_the_clients_use(document):
    assert contract_problems(document) == []


def test_a_renamed_request_field_breaks_the_contract(document):
    broken = copy.deepcopy(document)
    event_in = broken["components"]["schemas"]["EventIn"]
    event_in["properties"]["user_id"] = event_in["properties"].pop("userId")
    event_in["required"] = ["name", "user_id"]

    problems = contract_problems(broken)

    assert (
        "POST /v1/events request: the clients send 'userId', which the server no longer accepts" in problems
    )
    assert "POST /v1/events request: the server requires 'user_id', which the clients never send" in problems


def test_a_response_field_that_changes_type_or_goes_missing_breaks_the_contract(document):
    broken = copy.deepcopy(document)
    schemas = broken["components"]["schemas"]
    schemas["EventAccepted"]["properties"]["duplicate"] = {"type": "string"}
    del schemas["BatchItemResult"]["properties"]["status"]
    del broken["paths"]["/v1/contacts/{key}"]

    problems = contract_problems(broken)

    assert "POST /v1/events 202: 'duplicate' may now be ['string']; the clients expect boolean" in problems
    assert (
        "POST /v1/events/batch 207.results[]: the clients read 'status', which the server no longer returns"
        in problems
    )
    assert any(p.startswith("GET /v1/contacts/{key}: the clients call it") for p in problems)


def test_the_python_client_sends_only_fields_of_the_contract():
    contract = load_contract()["operations"]
    every_field = _core.event_body(
        name="a",
        user_id="u",
        user_email="ada@example.com",
        event_properties={"a": 1},
        contact_properties={"b": 2},
        timestamp="2026-01-01T00:00:00Z",
        idempotency_key="k",
        double_opt_in=True,
    )
    assert set(every_field) == set(contract["POST /v1/events"]["request"])
    contact = _core.contact_body(
        user_id="u", email="ada@example.com", properties={"a": 1}, double_opt_in=False
    )
    assert set(contact) == set(contract["PUT /v1/contacts"]["request"])
