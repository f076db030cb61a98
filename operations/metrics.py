"""Prometheus metrics, in prometheus-client's multiprocess mode.

Every process (each web worker, `runworker`, Celery) writes its counters to files under
PROMETHEUS_MULTIPROC_DIR (settings.py sets the variable before anything imports the library); a
scrape of any web process sums them all. What the database already knows (outbox lag, runs,
sends, webhook deliveries, dead letters) is read at scrape time by `DatabaseCollector`, so no other
code has to count it and every process agrees.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)
# Where this process's values go; the directory must exist before the first metric is created.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.PROMETHEUS_MULTIPROC_DIR
Path(MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# --- counted where it happens (written to this process's files) ----------------------------------
EVENTS_INGESTED = Counter(
    "hogsend_events_ingested_total", "Events accepted by the API, by outcome", ["outcome"]
)
EVENTS_REJECTED = Counter(
    "hogsend_events_rejected_total",
    "Events (or whole requests, when the body never parsed) the API refused, by status code",
    ["status"],
)
HTTP_LATENCY = Histogram(
    "hogsend_http_request_duration_seconds",
    "Time to answer a /v1 request, by route, method and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_PUSHED = Counter("hogsend_outbox_pushed_total", "Events the outbox relay pushed to the engine")
OUTBOX_SKIPPED = Counter(
    "hogsend_outbox_skipped_total", "Events the relay settled without a push (nothing listens)"
)
OUTBOX_PUSH_FAILURES = Counter(
    "hogsend_outbox_push_failures_total", "Relay batches the engine refused (retried)"
)

OUTBOX_RECONCILED = Counter(
    "hogsend_outbox_reconciled_total",
    "Pushed events nothing decided after the timeout: pushed again, or set aside as unsettled",
    ["outcome"],
)


def reconcile_observe(result: Any) -> dict[str, int]:
    """Counts one reconciler pass (a journeys.reconcile.Reconciled)."""
    OUTBOX_RECONCILED.labels("redispatched").inc(len(result.redispatched))
    OUTBOX_RECONCILED.labels("unsettled").inc(len(result.unsettled))
    return {"redispatched": len(result.redispatched), "unsettled": len(result.unsettled)}


def relay_batch_observe(result: Any) -> Any:
    """Counts one outbox relay batch (a RelayBatch) and hands it back."""
    if result.error:
        OUTBOX_PUSH_FAILURES.inc()
    else:
        OUTBOX_PUSHED.inc(result.pushed)
        OUTBOX_SKIPPED.inc(result.skipped)
    return result


# --- read from the database at scrape time --------------------------------------------------------
class DatabaseCollector(Collector):
    """Numbers the database already holds; each is one grouped query per scrape."""

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception as error:  # a scrape must answer even while the database is down
            logger.warning("metrics: database collector failed: %s", error)
            up = GaugeMetricFamily("hogsend_database_up", "Whether the metrics could read the database")
            up.add_metric([], 0)
            yield up

    def _collect(self) -> Iterator[Metric]:
        from operations import selectors
        from operations.models import Alert

        backlog = selectors.outbox_backlog()
        yield GaugeMetricFamily(
            "hogsend_outbox_pending", "Events waiting for the relay", value=backlog.pending
        )
        yield GaugeMetricFamily(
            "hogsend_outbox_oldest_age_seconds",
            "Age of the oldest pending event (outbox lag)",
            value=backlog.oldest_age_seconds,
        )

        started = CounterMetricFamily(
            "hogsend_journey_runs_started", "Runs ever entered, by journey", labels=["journey"]
        )
        ended = CounterMetricFamily(
            "hogsend_journey_runs_ended", "Runs that ended, by journey and how", labels=["journey", "status"]
        )
        live = GaugeMetricFamily(
            "hogsend_journey_runs_live",
            "Runs under way, by journey and status (waiting = parked)",
            labels=["journey", "status"],
        )
        parked = GaugeMetricFamily(
            "hogsend_journey_runs_parked", "Runs parked in a sleep or wait", labels=["journey"]
        )
        totals: dict[str, int] = {}
        for row in selectors.runs_by_journey_and_status():
            journey, status, n = row["journey_id"], row["status"], row["n"]
            totals[journey] = totals.get(journey, 0) + n
            if status in ("active", "waiting"):
                live.add_metric([journey, status], n)
                if status == "waiting":
                    parked.add_metric([journey], n)
            else:
                ended.add_metric([journey, status], n)
        for journey, n in sorted(totals.items()):
            started.add_metric([journey], n)
        yield from (started, ended, live, parked)

        sends = GaugeMetricFamily(
            "hogsend_emails", "Email log rows by current status and provider", labels=["status", "provider"]
        )
        errors = CounterMetricFamily(
            "hogsend_email_provider_errors",
            "Sends that failed at the provider, by provider",
            labels=["provider"],
        )
        for row in selectors.emails_by_status_and_provider():
            provider = row["provider"] or "none"
            sends.add_metric([row["status"], provider], row["n"])
            if row["status"] == "failed":
                errors.add_metric([provider], row["n"])
        yield from (sends, errors)

        firing = GaugeMetricFamily(
            "hogsend_alerts_firing", "Alert incidents firing, by rule", labels=["rule"]
        )
        for rule, n in _alerts_firing(Alert):
            firing.add_metric([rule], n)
        yield firing

        yield from _integrations_metrics()


def _alerts_firing(alert_model: Any) -> list[tuple[str, int]]:
    from django.db.models import Count

    rows = alert_model.objects.filter(status="firing").order_by().values("rule").annotate(n=Count("id"))
    return [(row["rule"], row["n"]) for row in rows]


def _integrations_metrics() -> Iterator[Metric]:
    """Webhook deliveries in (by source) and out (by destination), and dead letters, when the
    integrations app is installed."""
    if not apps.is_installed("integrations"):
        return
    from django.db.models import Count

    inbound = apps.get_model("integrations", "WebhookDelivery")
    outbound = apps.get_model("integrations", "Delivery")
    received = CounterMetricFamily(
        "hogsend_webhook_deliveries_received",
        "Verified webhook deliveries in, by source and outcome",
        labels=["source", "outcome"],
    )
    for row in inbound.objects.order_by().values("source_id", "outcome").annotate(n=Count("pk")):
        received.add_metric([row["source_id"], row["outcome"]], row["n"])
    sent = GaugeMetricFamily(
        "hogsend_destination_deliveries",
        "Deliveries out, by destination and status",
        labels=["destination", "status"],
    )
    dead = GaugeMetricFamily(
        "hogsend_dead_letters", "Dead-lettered deliveries, by destination", labels=["destination"]
    )
    for row in outbound.objects.order_by().values("destination__name", "status").annotate(n=Count("pk")):
        sent.add_metric([row["destination__name"], row["status"]], row["n"])
        if row["status"] == "dead":
            dead.add_metric([row["destination__name"]], row["n"])
    yield from (received, sent, dead)


def metrics_render() -> bytes:
    """Every process's counters (summed) and the database's numbers, in the text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    registry.register(DatabaseCollector())
    return generate_latest(registry)
