"""`POST /v1/emails`: transactional sends over HTTP, admin scope, clear 4xx for bad input."""

from __future__ import annotations

import pytest
from django.core import mail

from contacts.models import Suppression
from contacts.services import api_key_create
from emails.models import EmailLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_headers(db):
    _, secret = api_key_create(name="admin", scopes=["admin"])
    return {"Authorization": f"Bearer {secret}"}


def post(client, body, headers):
    return client.post("/v1/emails", body, content_type="application/json", headers=headers)


CSM = {
    "to": "ops@example.com",
    "template": "transactional/csm-alert",
    "props": {"customer_email": "cto@bigco.example", "customer_id": "u1", "seats": 9},
    "idempotencyKey": "page-1",
}


def test_an_admin_key_sends_a_transactional_email_once_per_idempotency_key(client, admin_headers):
    first = post(client, CSM, admin_headers)
    again = post(client, CSM, admin_headers)

    assert first.status_code == 202
    assert first.json()["status"] == "sent" and first.json()["duplicate"] is False
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["emailId"] == first.json()["emailId"]
    assert len(mail.outbox) == 1
    assert EmailLog.objects.get().category == "transactional"


def test_the_idempotency_key_is_required_and_the_openapi_schema_says_so(client, admin_headers):
    body = {k: v for k, v in CSM.items() if k != "idempotencyKey"}
    response = post(client, body, admin_headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "idempotencyKey"
    assert not EmailLog.objects.exists()
    schema = client.get("/v1/openapi.json").json()["components"]["schemas"]["EmailSendIn"]
    assert "idempotencyKey" in schema["required"]


def test_an_ingest_key_may_not_send_email(client, api_key_secret):
    response = post(client, CSM, {"Authorization": f"Bearer {api_key_secret}"})
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": "nope/missing"}, "unknown email template 'nope/missing'"),
        ({"props": {"customer_id": "u1"}}, "needs props: customer_email"),
        ({"to": "not an address"}, "is not a valid email address"),
    ],
)
def test_bad_input_is_a_422_that_says_what_is_wrong_and_stores_nothing(
    client, admin_headers, change, message
):
    response = post(client, {**CSM, **change}, admin_headers)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert not EmailLog.objects.exists()
    assert mail.outbox == []


def test_a_suppressed_recipient_is_not_mailed(client, admin_headers):
    Suppression.objects.create(email="ops@example.com", reason=Suppression.Reason.COMPLAINT)
    response = post(client, CSM, admin_headers)
    assert response.status_code == 202
    assert response.json()["status"] == "suppressed"
    assert mail.outbox == []


def test_a_retry_of_a_request_that_died_before_the_provider_call_delivers_the_email(client, admin_headers):
    from django.utils import timezone

    left = EmailLog.objects.create(  # the first request committed its row, then its process died
        to_email=CSM["to"],
        template=CSM["template"],
        subject="[CSM] page",
        category="transactional",
        props=CSM["props"],
        idempotency_key=f"api:{CSM['idempotencyKey']}",
        created_at=timezone.now(),
    )

    again = post(client, CSM, admin_headers)

    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert (again.json()["emailId"], again.json()["status"]) == (str(left.pk), "sent")
    assert [m.to for m in mail.outbox] == [[CSM["to"]]]
