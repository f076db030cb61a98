"""The Prometheus endpoint: who may scrape it, and what the database collector reports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.operations.conftest import contact, email_log, event, journey_run

pytestmark = pytest.mark.django_db


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_without_a_token_only_loopback_clients_may_scrape(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    # A reverse proxy on the same host forwards the world's requests from loopback.
    assert (
        client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    )


def test_with_a_token_every_scrape_must_bring_it(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    response = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", headers={"Authorization": "Bearer s3cret-scrape-token"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_the_database_collector_reports_outbox_lag_runs_and_sends(client):
    people = [contact() for _ in range(4)]
    event(people[0], age=timedelta(minutes=5))
    journey_run(people[0], status="completed")
    journey_run(people[1], status="failed")
    journey_run(people[2], status="waiting")
    journey_run(people[3], journey_id="trial-expiry", status="exited")
    email_log(status="delivered", provider="resend")
    email_log(status="failed", provider="resend")

    got = samples(client.get("/metrics").content)

    assert got[("hogsend_outbox_pending", ())] == 1
    assert got[("hogsend_outbox_oldest_age_seconds", ())] >= 300
    assert got[("hogsend_journey_runs_started_total", (("journey", "activation-welcome"),))] == 3
    assert (
        got[("hogsend_journey_runs_ended_total", (("journey", "activation-welcome"), ("status", "failed")))]
        == 1
    )
    assert got[("hogsend_journey_runs_parked", (("journey", "activation-welcome"),))] == 1
    assert got[("hogsend_journey_runs_ended_total", (("journey", "trial-expiry"), ("status", "exited")))] == 1
    assert got[("hogsend_emails", (("provider", "resend"), ("status", "delivered")))] == 1
    assert got[("hogsend_email_provider_errors_total", (("provider", "resend"),))] == 1


def latency_counts(client) -> dict[tuple, float]:
    return {
        labels: value
        for (name, labels), value in samples(client.get("/metrics").content).items()
        if name == "hogsend_http_request_duration_seconds_count"
    }


def test_each_v1_request_is_timed_by_route_not_by_path(api, client):
    before = latency_counts(client)

    api.get("/v1/contacts/nobody-1")
    api.get("/v1/contacts/nobody-2")

    grew = {
        labels: n - before.get(labels, 0)
        for labels, n in latency_counts(client).items()
        if n != before.get(labels, 0)
    }
    [(labels, n)] = grew.items()  # both requests on one series, whatever their ids
    assert n == 2
    assert dict(labels)["status"] == "404" and dict(labels)["method"] == "GET"
    assert "nobody" not in dict(labels)["route"] and "contacts" in dict(labels)["route"]


@pytest.mark.asyncio
async def test_requests_served_over_asgi_are_timed_too(async_client):
    from operations.metrics import HTTP_LATENCY

    series = HTTP_LATENCY.labels("v1/contacts/<key>", "GET", "401")
    before = series._sum.get()

    response = await async_client.get("/v1/contacts/someone")

    assert response.status_code == 401  # no key: answered before any database work
    assert series._sum.get() > before


def test_a_batch_counts_each_event_by_its_outcome(api, client):
    def counts() -> dict[str, float]:
        got = samples(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content)
        return {
            "accepted": got.get(("hogsend_events_ingested_total", (("outcome", "accepted"),)), 0),
            "duplicate": got.get(("hogsend_events_ingested_total", (("outcome", "duplicate"),)), 0),
            "rejected": got.get(("hogsend_events_rejected_total", (("status", "422"),)), 0),
        }

    before = counts()
    response = api.post(
        "/v1/events/batch",
        {
            "events": [
                {"name": "page.viewed", "userId": "m1", "idempotencyKey": "m-1"},
                {"name": "page.viewed", "userId": "m1", "idempotencyKey": "m-1"},
                {"name": "page.viewed", "userId": "m2"},
                {"userId": "m3"},
            ]
        },
    )

    assert response.status_code == 207
    after = counts()
    assert {k: after[k] - before[k] for k in after} == {"accepted": 2, "duplicate": 1, "rejected": 1}
