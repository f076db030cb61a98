"""`/v1/health`: the doctor's verdict for load balancers, the details only for a read key."""

from __future__ import annotations

import pytest

from contacts.services import api_key_create
from journeys.runtime.worker import Heartbeat
from operations import checks

pytestmark = pytest.mark.django_db


def test_a_load_balancer_gets_503_and_nothing_but_the_status_when_a_check_fails(client):
    Heartbeat("hogsend-web1-4242", ["activation-welcome"]).beat()

    response = client.get("/v1/health")

    assert response.status_code == 503  # no Celery worker runs here
    assert response.json() == {"status": "failing"}
    assert b"hogsend-web1-4242" not in response.content


def test_a_load_balancer_gets_200_when_nothing_fails(client, monkeypatch):
    monkeypatch.setattr(checks, "CHECKS", [checks.check_database, checks.check_redis])

    response = client.get("/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_read_key_sees_every_check_with_workers_journeys_and_backlog(api):
    Heartbeat("hogsend-web1-4242", ["activation-welcome"]).beat()

    response = api.get("/v1/health")

    assert response.status_code == 503
    body = response.json()
    by_name = {c["name"]: c for c in body["checks"]}
    assert len(body["checks"]) == len(checks.CHECKS)
    assert by_name["workers"]["detail"]["workers"][0]["worker"] == "hogsend-web1-4242"
    assert by_name["workers"]["detail"]["workers"][0]["journeys"] == ["activation-welcome"]
    assert by_name["outbox"]["detail"] == {"pending": 0, "oldest_age_seconds": 0.0}
    assert by_name["celery"]["status"] == "failing"
    assert by_name["celery"]["action"]


def test_a_key_without_the_read_scope_is_refused_the_details(client):
    _, secret = api_key_create(name="ingest-only", scopes=["ingest"])

    response = client.get("/v1/health", headers={"Authorization": f"Bearer {secret}"})

    assert response.status_code == 403
    assert "read" in response.json()["detail"]
