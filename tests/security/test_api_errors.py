"""Every /v1 error is JSON, says what went wrong, and has a status the OpenAPI document lists."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_invalid_json_says_so_with_the_position(api):
    response = api.post("/v1/events", '{"name": "x",')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("cannot parse the request body: invalid JSON at line 1")


def test_a_form_body_is_told_to_send_json(client, api):
    response = client.post(
        "/v1/events", {"name": "x", "userId": "ada"}, headers=api.headers
    )  # the test client's default is multipart form data
    assert response.status_code == 400
    assert "got a form body" in response.json()["detail"]


def test_a_body_that_is_not_utf8_says_so(client, api):
    response = client.post(
        "/v1/events", b'{"name": "\xff"}', content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400
    assert "not valid UTF-8" in response.json()["detail"]


def test_an_oversize_single_event_is_a_413_that_does_not_talk_about_batches(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/v1/events", {"name": "x", "userId": "ada", "eventProperties": {"a": "b" * 2000}})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "1,000 bytes" in detail
    assert "batch" not in detail


def test_an_oversize_batch_is_told_to_split(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/v1/events/batch", {"events": [{"name": "x", "userId": "a" * 200}] * 10})
    assert response.status_code == 413
    assert "split the batch" in response.json()["detail"]


@pytest.mark.parametrize(
    "authorization", [None, "Basic abc", "Bearer hsk_not_a_real_key"], ids=["missing", "basic", "unknown"]
)
def test_a_401_names_the_bearer_scheme(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/v1/contacts/ada", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"]


def test_an_unknown_path_under_v1_is_a_json_404(client):
    response = client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "/v1/docs" in response.json()["detail"]


def test_an_unexpected_error_is_a_json_500_with_a_reference(api, monkeypatch):
    from contacts import selectors

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "contact_get", broken)
    response = api.get("/v1/contacts/ada")
    assert response.status_code == 500
    assert "reference" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_ingest_is_a_json_503_with_retry_after(api):
    # Really unreachable: point the connection at a port nothing listens on.
    real_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = api.post("/v1/events", {"name": "user.created", "userId": "ada"})
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "database is unavailable" in response.json()["detail"]


def test_the_openapi_document_lists_every_error_status_with_its_body(client):
    schema = client.get("/v1/openapi.json").json()
    assert "ErrorOut" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "409", "413", "422", "429", "503"):
                response = operation["responses"].get(status)
                assert response, f"{method.upper()} {path} does not document {status}"
                assert "schema" in response["content"]["application/json"]
    # An operation may describe a status itself (the health check's 503); the rest share ErrorOut.
    assert schema["paths"]["/v1/events"]["post"]["responses"]["422"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/ErrorOut"}


def test_a_nul_in_a_query_parameter_is_a_422_naming_it(client):
    from contacts.services import api_key_create

    _, secret = api_key_create(name="ops", scopes=["admin"])
    response = client.get(
        "/v1/admin/suppressions", {"email": "ada\x00"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "email", "message": "contains a NUL character (\\u0000); remove it"}
    ]


def test_a_wrong_method_is_a_json_405_that_names_the_right_one(api):
    response = api.get("/v1/events")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["detail"] == "method GET is not allowed here; use POST"
