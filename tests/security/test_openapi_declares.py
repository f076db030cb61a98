"""The OpenAPI document declares what the server enforces, so a client generated from it refuses
the same input the server does: addresses, blank identifiers, NUL characters, event times,
templates and their props, and page cursors. Each refusal below is one the server makes; the
schema validator (jsonschema, as a generated client would) must make it too."""

from __future__ import annotations

import jsonschema_rs
import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(client):
    return client.get("/v1/openapi.json").json()


@pytest.fixture
def admin(client):
    from contacts.services import api_key_create

    _, secret = api_key_create(name="ops", scopes=["admin"])

    class Admin:
        headers = {"Authorization": f"Bearer {secret}"}

        def get(self, path: str):
            return client.get(path, headers=self.headers)

        def post(self, path: str, body: dict):
            return client.post(path, body, content_type="application/json", headers=self.headers)

    return Admin()


def body_validator(document, path: str, method: str = "post"):
    """The body's schema, its references resolved within the document, formats checked."""
    pointer = f"/paths/{path.replace('/', '~1')}/{method}/requestBody/content/application~1json/schema"
    return jsonschema_rs.validator_for({**document, "$ref": f"#{pointer}"}, validate_formats=True)


def parameter_schema(document, path: str, name: str) -> dict:
    [parameter] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    schema = parameter["schema"]
    return next((o for o in schema.get("anyOf", [schema]) if o.get("type") == "string"), schema)


EVENT = {"name": "user.created", "userId": "ada"}


@pytest.mark.parametrize(
    "change",
    [
        {"email": ""},
        {"email": "not-an-address"},
        {"email": "0@0.a"},
        {"userId": "   "},
        {"userId": ""},
        {"name": "a\x00b"},
        {"idempotencyKey": " "},
        {"eventProperties": {"note": "a\x00b"}},
        {"eventProperties": {"deep": [{"k\x00": 1}]}},
        {"timestamp": "1999-06-30T00:00:00Z"},
        {"timestamp": "2026-01-01T00:00:00+16:00"},
    ],
)
def test_the_event_schema_refuses_what_ingest_refuses(document, api, change):
    body = {**EVENT, **change}
    assert list(body_validator(document, "/v1/events").iter_errors(body)), f"the schema allows {change}"
    assert api.post("/v1/events", body).status_code == 422


def test_the_event_schema_allows_a_well_formed_event(document, api):
    body = {
        **EVENT,
        "email": "ada@example.com",
        "eventProperties": {"plan": "pro", "seats": [1, {"x": None}]},
        "timestamp": "2026-01-01T00:00:00+15:59",
    }
    assert list(body_validator(document, "/v1/events").iter_errors(body)) == []
    assert api.post("/v1/events", body).status_code == 202


@pytest.mark.parametrize(
    "change",
    [
        {"to": "ada@example.test"},
        {"to": "ada"},
        {"template": "no/such-template"},
        {"template": "onboarding/concierge-intro", "props": {}},
        {"template": "onboarding/concierge-intro", "props": {"csm_name": ""}},
        {"template": "onboarding/concierge-intro", "props": {"csm_name": None}},
        {"userId": ""},
    ],
)
def test_the_email_schema_refuses_what_the_send_endpoint_refuses(document, admin, change):
    body = {"to": "ada@example.com", "template": "activation/welcome", "idempotencyKey": "k1", **change}
    assert list(body_validator(document, "/v1/emails").iter_errors(body)), f"the schema allows {change}"
    assert admin.post("/v1/emails", body).status_code == 422


def test_a_cursor_is_declared_by_its_pattern_and_any_well_formed_one_is_taken(document, admin):
    import re

    pattern = parameter_schema(document, "/v1/admin/runs", "cursor")["pattern"]
    assert not re.search(pattern, "nonsense")
    assert admin.get("/v1/admin/runs?cursor=nonsense").status_code == 422
    for cursor in (
        "0_00000000-0000-0000-0000-000000000000",
        "999999999999999999_" + "f" * 8 + "-ffff-ffff-ffff-" + "f" * 12,
    ):
        assert re.search(pattern, cursor)
        assert admin.get(f"/v1/admin/runs?cursor={cursor}").status_code == 200


def test_query_strings_declare_that_they_hold_no_nul(document, admin):
    import re

    pattern = parameter_schema(document, "/v1/admin/suppressions", "email")["pattern"]
    assert not re.search(pattern, "a\x00") and re.search(pattern, "ada")
    assert admin.get("/v1/admin/suppressions?email=a%00").status_code == 422
