"""`/v1/admin/broadcasts`: create, list, read, pause, resume, cancel; what it names must exist."""

from __future__ import annotations

import pytest

from broadcasts.models import Broadcast
from broadcasts.send import broadcast_drain
from broadcasts.templates import ANNOUNCEMENT
from contacts.models import AuditEntry
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS

pytestmark = pytest.mark.django_db
BODY = {
    "name": "Dark mode",
    "template": ANNOUNCEMENT,
    "props": ANNOUNCEMENT_PROPS,
    "filter": [{"property": "plan", "operator": "eq", "value": "pro"}],
    "rate": 0,
}


def test_an_operator_creates_a_broadcast_and_reads_its_progress_and_report(admin, people, smtp_server):
    people(2, properties={"plan": "pro"})
    people(1, properties={"plan": "free"})

    created = admin.post("/v1/admin/broadcasts", BODY)

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "running"
    assert body["progress"] | {"rate": 0} == {"total": 2, "sent": 0, "enrolled": 0, "held": 0, "skipped": {},
                                               "remaining": 2, "scheduled": 0, "rate": 0, "secondsLeft": None}  # fmt: skip
    broadcast_drain(broadcast_id=body["id"], seconds=30)
    read = admin.get(f"/v1/admin/broadcasts/{body['id']}").json()
    assert read["status"] == "completed"
    assert (read["progress"]["sent"], read["progress"]["remaining"]) == (2, 0)
    assert read["report"] == {"delivered": 0, "bounced": 0, "complained": 0, "opened": 0, "clicked": 0,
                              "unsubscribed": 0}  # fmt: skip
    assert [b["id"] for b in admin.get("/v1/admin/broadcasts").json()] == [body["id"]]
    assert AuditEntry.objects.filter(action="broadcast.create", target_id=body["id"]).exists()


def test_pause_resume_and_cancel_over_http(admin, people):
    people(1, properties={"plan": "pro"})
    broadcast_id = admin.post("/v1/admin/broadcasts", BODY).json()["id"]

    assert admin.post(f"/v1/admin/broadcasts/{broadcast_id}/pause").json()["status"] == "paused"
    assert admin.post(f"/v1/admin/broadcasts/{broadcast_id}/resume").json()["status"] == "running"
    cancelled = admin.post(f"/v1/admin/broadcasts/{broadcast_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["progress"]["skipped"] == {"broadcast_cancelled": 1}
    again = admin.post(f"/v1/admin/broadcasts/{broadcast_id}/resume")
    assert again.status_code == 409
    assert "a cancelled broadcast cannot be resumed" in again.json()["detail"]
    assert admin.post("/v1/admin/broadcasts/00000000-0000-0000-0000-000000000000/cancel").status_code == 404


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"template": "no/such"}, "template: unknown email template 'no/such'"),
        ({"filter": None, "segment": "trial-pro"}, "segment: unknown segment 'trial-pro'"),
        (
            {"filter": [{"property": "plan", "operator": "like", "value": 1}]},
            "filter: unknown operator 'like'",
        ),
        ({"props": {}}, "props: template 'broadcasts/announcement' needs props: headline"),
    ],
)
def test_what_a_broadcast_names_must_exist_or_it_is_a_422_naming_it(admin, change, detail):
    response = admin.post("/v1/admin/broadcasts", {**BODY, **change})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    assert not Broadcast.objects.exists()


def test_only_admin_keys_reach_broadcasts(ingest_only):
    assert ingest_only.post("/v1/admin/broadcasts", BODY).status_code in (401, 403)


@pytest.mark.parametrize("value", ["pro\u0000", {"nested": "a\u0000"}])
def test_a_filter_value_postgresql_cannot_store_is_a_422_naming_it(admin, value):
    response = admin.post(
        "/v1/admin/broadcasts", {**BODY, "filter": [{"property": "plan", "operator": "eq", "value": value}]}
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"].startswith("filter") and "NUL" in error["message"]
    assert not Broadcast.objects.exists()


@pytest.mark.parametrize(
    ("send_at", "message"),
    [
        ("3639-05-08T07:14:59-17:24", "offset is out of range"),
        ("2026-12-10T10:00:00", "must include a timezone offset"),
        ("9999-12-31T23:59:59-15:00", "year must be between"),
    ],
)
def test_a_send_time_postgresql_cannot_store_is_a_422_naming_it(admin, send_at, message):
    response = admin.post("/v1/admin/broadcasts", {**BODY, "sendAt": send_at})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "sendAt" and message in error["message"]
    assert not Broadcast.objects.exists()
