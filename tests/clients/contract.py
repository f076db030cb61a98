"""Checks the clients' contract (clients/openapi-contract.json) against an OpenAPI document.

Directional, like compatibility itself: what the clients send must be accepted (the server may
accept more), what they read must be there (the server may return more), and a response field
may not take a type the clients do not expect.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACT_PATH = Path(__file__).resolve().parents[2] / "clients" / "openapi-contract.json"


def load_contract() -> dict[str, Any]:
    return json.loads(CONTRACT_PATH.read_text())


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _types(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = _resolve(document, schema)
    if "anyOf" in schema or "oneOf" in schema:
        return set().union(*(_types(document, s) for s in schema.get("anyOf", schema.get("oneOf"))))
    if "type" in schema:
        kind = schema["type"]
        return set(kind) if isinstance(kind, list) else {kind}
    if "properties" in schema:
        return {"object"}
    return {"any"}


def _json_body(operation: dict[str, Any], status: str | None = None) -> dict[str, Any] | None:
    holder = operation.get("requestBody") if status is None else operation["responses"].get(status)
    if holder is None and status is not None:
        holder = operation["responses"].get(int(status))
    if holder is None:
        return None
    return holder.get("content", {}).get("application/json", {}).get("schema")


def _check_request(document, where, schema, fields) -> list[str]:
    problems = []
    schema = _resolve(document, schema)
    properties = schema.get("properties", {})
    for field, expected in fields.items():
        if field not in properties:
            problems.append(f"{where}: the clients send '{field}', which the server no longer accepts")
            continue
        accepted = _types(document, properties[field])
        for kind in expected.split("|"):
            if kind not in accepted and "any" not in accepted:
                problems.append(f"{where}: '{field}' is sent as {kind}; the server takes {sorted(accepted)}")
    for field in schema.get("required", []):
        if field not in fields:
            problems.append(f"{where}: the server requires '{field}', which the clients never send")
    return problems


def _check_response(document, contract, where, schema, shape_name) -> list[str]:
    problems = []
    schema = _resolve(document, schema)
    properties = schema.get("properties", {})
    for field, expected in contract["shapes"][shape_name].items():
        if field not in properties:
            problems.append(f"{where}: the clients read '{field}', which the server no longer returns")
            continue
        if isinstance(expected, list):  # a list of a nested shape
            items = _resolve(document, properties[field]).get("items", {})
            problems += _check_response(document, contract, f"{where}.{field}[]", items, expected[0])
            continue
        returned = _types(document, properties[field])
        unexpected = returned - set(expected.split("|"))
        if unexpected:
            problems.append(
                f"{where}: '{field}' may now be {sorted(unexpected)}; the clients expect {expected}"
            )
    return problems


def contract_problems(document: dict[str, Any], contract: dict[str, Any] | None = None) -> list[str]:
    """Every way `document` breaks what the clients rely on; empty when it breaks nothing."""
    contract = contract or load_contract()
    problems: list[str] = []
    for key, expected in contract["operations"].items():
        method, path = key.split(" ", 1)
        operation = document.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            problems.append(f"{key}: the clients call it, and the OpenAPI document has no such operation")
            continue
        if "request" in expected:
            body = _json_body(operation)
            if body is None:
                problems.append(f"{key}: no JSON request body")
            else:
                problems += _check_request(document, f"{key} request", body, expected["request"])
        statuses = {**expected["responses"], **dict.fromkeys(contract["errors"]["statuses"], "ErrorOut")}
        for status, shape in statuses.items():
            body = _json_body(operation, status)
            if body is None:
                problems.append(f"{key}: the clients read a {status} answer, which is no longer documented")
                continue
            problems += _check_response(document, contract, f"{key} {status}", body, shape)
    return problems
