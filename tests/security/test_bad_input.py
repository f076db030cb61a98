"""Input PostgreSQL cannot store is a 422 that names the field and the fix, and nothing is written."""

from __future__ import annotations

import pytest
from django.utils import timezone

from contacts.models import Contact, Event

pytestmark = pytest.mark.django_db


def event(**fields):
    return {"name": "user.created", "userId": "ada", "email": "ada@example.com", **fields}


def assert_refused(response, field: str, fix: str) -> None:
    assert response.status_code == 422, response.content
    body = response.json()
    assert field in [error["field"] for error in body["errors"]], body
    assert fix in body["detail"], body
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "user\x00created"}, "name"),
        ({"userId": "ada\x00"}, "userId"),
        ({"idempotencyKey": "k\x00"}, "idempotencyKey"),
        ({"eventProperties": {"plan": "pro\x00"}}, "eventProperties"),
        ({"eventProperties": {"pl\x00an": "pro"}}, "eventProperties"),
        ({"contactProperties": {"tags": [{"deep": "a\x00"}]}}, "contactProperties"),
    ],
)
def test_a_nul_character_anywhere_is_a_422_naming_the_field(api, fields, field):
    assert_refused(api.post("/v1/events", event(**fields)), field, "remove it")


def test_a_lone_surrogate_in_properties_is_a_422(api):
    body = '{"name": "user.created", "userId": "ada", "eventProperties": {"note": "\\ud800"}}'
    assert_refused(api.post("/v1/events", body), "eventProperties", "send valid Unicode")


def test_nan_in_properties_is_refused_as_not_json(api):
    body = '{"name": "user.created", "userId": "ada", "eventProperties": {"score": NaN}}'
    response = api.post("/v1/events", body)
    assert response.status_code == 400
    assert "NaN is not a JSON value" in response.json()["detail"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("field", ["userId", "name"])
def test_a_whitespace_only_user_id_or_name_is_refused(api, field):
    assert_refused(api.post("/v1/events", event(**{field: "   "})), field, "must not be blank")


@pytest.mark.parametrize("timestamp", ["1970-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_a_timestamp_before_2000_is_refused_and_never_stored(api, timestamp):
    assert_refused(
        api.post("/v1/events", event(timestamp=timestamp)), "timestamp", "before 2000-01-01T00:00:00Z"
    )


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-01:00", "2999-01-01T00:00:00Z"])
def test_a_timestamp_more_than_a_day_ahead_is_a_wrong_clock_and_the_event_occurs_now(api, timestamp):
    before = timezone.now()
    response = api.post("/v1/events", event(timestamp=timestamp))

    assert response.status_code == 202, response.content
    assert before <= Event.objects.get().occurred_at <= timezone.now()


@pytest.mark.parametrize("timestamp", ["2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00-23:59"])
def test_a_timezone_offset_beyond_15_59_is_refused(api, timestamp):
    assert_refused(api.post("/v1/events", event(timestamp=timestamp)), "timestamp", "-15:59 and +15:59")


def test_an_offset_of_15_59_inside_the_window_is_accepted_and_reads_back(api):
    response = api.post("/v1/events", event(timestamp="2026-01-01T00:00:00+15:59"))
    assert response.status_code == 202
    assert api.get("/v1/contacts/ada/timeline").status_code == 200


def test_a_bad_item_in_a_batch_is_rejected_alone_with_its_field(api):
    response = api.post(
        "/v1/events/batch",
        {"events": [event(), event(userId="bob\x00"), event(timestamp="1999-06-30T00:00:00Z")]},
    )
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert results[1]["errors"][0]["field"] == "events[1].userId"
    assert results[2]["errors"][0]["field"] == "events[2].timestamp"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"userId": "ada\x00"}, "userId"),
        ({"userId": " "}, "userId"),
        ({"userId": "ada", "properties": {"k\x00": 1}}, "properties"),
    ],
)
def test_put_contacts_refuses_the_same_input(api, body, field):
    response = api.put("/v1/contacts", body)
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert not Contact.objects.exists()


def test_put_contacts_refuses_a_lone_surrogate(api):
    response = api.put("/v1/contacts", '{"userId": "ada", "properties": {"x": "\\udfff"}}')
    assert response.status_code == 422
    assert not Contact.objects.exists()


def test_a_reserved_test_domain_is_stored_at_ingest_but_never_mailed(api, settings):
    # .test, .invalid, .local and .localhost (RFC 6761) never take mail. Ingest stores the contact
    # and event (staging systems use such addresses); the send pipeline records why it did not send.
    from emails.models import EmailLog
    from emails.services import email_send

    assert api.post("/v1/events", event(email="ada@shop.test")).status_code == 202
    log = email_send(
        to="ada@shop.test", template="activation/welcome", props={"first_name": "Ada"}, idempotency_key="t1"
    )
    assert log.status == EmailLog.Status.FAILED
    assert "special-use or reserved name" in log.status_reason


@pytest.mark.parametrize(
    "change", [{"userId": "ada\x00"}, {"props": {"x\x00": 1}}, {"subject": "hi\x00"}, {"idempotencyKey": " "}]
)
def test_the_email_api_refuses_what_it_could_not_store(client, change):
    from contacts.services import api_key_create
    from emails.models import EmailLog

    _, secret = api_key_create(name="ops", scopes=["admin"])
    body = {"to": "ops@example.com", "template": "transactional/csm-alert", "idempotencyKey": "k1", **change}
    response = client.post(
        "/v1/emails", body, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == next(iter(change))
    assert not EmailLog.objects.exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/suppressions", {"email": "a\x00@example.com"}, "email"),
        ("/v1/admin/suppressions", {"email": "ada@example.com", "note": "\x00"}, "note"),
        ("/v1/admin/journeys/activation-welcome/enroll", {"contact": "ada\x00"}, "contact"),
        (
            "/v1/admin/journeys/activation-welcome/enroll",
            {"contact": "ada", "properties": {"\x00": 1}},
            "properties",
        ),
    ],
)
def test_the_admin_api_refuses_what_it_could_not_store(client, path, body, field):
    from contacts.services import api_key_create

    _, secret = api_key_create(name="ops", scopes=["admin"])
    response = client.post(
        path, body, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field
    assert not Event.objects.exists()
