"""The doctor's checks: each looks at one part of a deployment and says ok, degraded or failing,
and what to do about it. `manage.py doctor` prints them; `/v1/health` answers them as JSON.

A check never raises: whatever goes wrong while looking is itself the finding.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

BEAT_HEARTBEAT_KEY = "hogsend:beat"
# The beat heartbeat task runs every 30 s; three missed beats mean beat (or every worker) is down.
BEAT_MAX_AGE_SECONDS = 90
DEFAULT_SECRET_KEYS = frozenset({"dev-only-insecure-key-change-me", ""})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Status(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILING = "failing"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    summary: str
    action: str = ""
    # Operator-only facts (hostnames, PIDs, journeys, counts): never in the public health answer.
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def overall(results: list[CheckResult]) -> Status:
    statuses = {r.status for r in results}
    if Status.FAILING in statuses:
        return Status.FAILING
    if Status.DEGRADED in statuses:
        return Status.DEGRADED
    return Status.OK


def check_database() -> CheckResult:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:
        return CheckResult(
            "database",
            Status.FAILING,
            f"PostgreSQL unreachable: {_first_line(error)}",
            "start PostgreSQL (bin/services) or fix DATABASE_URL",
        )
    if pending:
        names = [f"{m.app_label}.{m.name}" for m, _ in pending]
        return CheckResult(
            "database",
            Status.FAILING,
            f"{len(names)} migration(s) not applied",
            "run `manage.py migrate`",
            {"unapplied": names},
        )
    return CheckResult("database", Status.OK, "reachable; migrations applied")


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def check_redis() -> CheckResult:
    try:
        redis_client().ping()
    except Exception as error:
        return CheckResult(
            "redis",
            Status.FAILING,
            f"Redis unreachable: {error}",
            "start Redis (bin/services) or fix REDIS_URL",
        )
    return CheckResult("redis", Status.OK, "reachable")


def _engine_get(server_url: str, token: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(
        server_url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=3) as response:
        return json.loads(response.read() or b"{}")


def check_engine() -> CheckResult:
    """Asks the engine's REST API for its version and the tenant the token belongs to."""
    from journeys.runtime.engine import hatchet_client

    try:
        config = hatchet_client().config
        version = _engine_get(config.server_url, config.token, "/api/v1/version").get("version", "?")
        tenant = _engine_get(config.server_url, config.token, f"/api/v1/tenants/{config.tenant_id}")
    except Exception as error:
        return CheckResult(
            "engine",
            Status.FAILING,
            f"Hatchet engine unreachable: {error}",
            "start it with `bin/engine start`, or check HATCHET_CLIENT_TOKEN and the engine's address",
        )
    name = tenant.get("name") or tenant.get("slug") or config.tenant_id
    return CheckResult(
        "engine",
        Status.OK,
        f"reachable, version {version}, tenant {name}",
        detail={"version": version, "tenant_id": config.tenant_id, "tenant": name, "url": config.server_url},
    )


def check_workers() -> CheckResult:
    """Live journey workers (their Redis heartbeats), and every loaded journey served by one."""
    from journeys.registry import registry
    from journeys.runtime.worker import worker_heartbeats

    try:
        workers = worker_heartbeats()
    except Exception as error:
        return CheckResult(
            "workers", Status.FAILING, f"cannot read worker heartbeats: {error}", "check Redis"
        )
    loaded = sorted(j.id for j in registry.loaded())
    served = {journey for w in workers for journey in w.get("journeys", [])}
    detail = {
        "workers": [
            {
                "worker": w["worker"],
                "journeys": w.get("journeys", []),
                "started_at": w.get("started_at"),
                "age_seconds": w.get("age_seconds"),
            }
            for w in workers
        ],
    }
    if not workers:
        return CheckResult(
            "workers",
            Status.FAILING,
            "no live journey worker",
            "start `manage.py runworker` (journeys wait in the engine until one runs)",
            detail,
        )
    unserved = [j for j in loaded if j not in served]
    if unserved:
        return CheckResult(
            "workers",
            Status.FAILING,
            f"{len(workers)} live worker(s), but no worker serves {', '.join(unserved)}",
            "restart the workers with the same HOGSEND_JOURNEY_MODULES and ENABLED_JOURNEYS as the web",
            {**detail, "unserved": unserved},
        )
    return CheckResult(
        "workers", Status.OK, f"{len(workers)} live worker(s) serve {len(loaded)} journeys", detail=detail
    )


def check_celery(*, all_workers: bool = True) -> CheckResult:
    """A Celery worker answers a ping, and beat's heartbeat task ran recently.

    A ping waits its whole timeout to hear from every worker; `all_workers=False` (the health
    endpoint) stops at the first answer.
    """
    # The project's Celery app (hogsend.celery sets it as the current one when Django starts).
    from celery import current_app as app

    try:
        replies = app.control.inspect(timeout=1.0, limit=None if all_workers else 1).ping() or {}
    except Exception as error:
        return CheckResult("celery", Status.FAILING, f"cannot reach the broker: {error}", "check REDIS_URL")
    if not replies:
        return CheckResult(
            "celery",
            Status.FAILING,
            "no Celery worker answered a ping",
            "start `celery -A hogsend worker -B` (outbox sweep, alerts and retention need it)",
        )
    detail = {"workers": sorted(replies)}
    try:
        raw = redis_client().get(BEAT_HEARTBEAT_KEY)
    except Exception as error:
        return CheckResult(
            "celery", Status.FAILING, f"cannot read beat's heartbeat: {error}", "check Redis", detail
        )
    age = time.time() - float(raw) if raw else None
    if age is None or age > BEAT_MAX_AGE_SECONDS:
        seen = "never" if age is None else f"{age:.0f}s ago"
        return CheckResult(
            "celery",
            Status.FAILING,
            f"{len(replies)} worker(s) answer, but beat last ran {seen}",
            "run exactly one beat: `celery -A hogsend worker -B` or `celery -A hogsend beat`",
            detail,
        )
    return CheckResult(
        "celery",
        Status.OK,
        f"{len(replies)} worker(s) answer; beat ran {age:.0f}s ago",
        detail={**detail, "beat_age_seconds": round(age, 1)},
    )


def check_outbox() -> CheckResult:
    from operations.selectors import outbox_backlog

    try:
        backlog = outbox_backlog()
    except Exception as error:
        return CheckResult(
            "outbox", Status.FAILING, f"cannot read the outbox: {_first_line(error)}", "check the database"
        )
    pending, age = backlog.pending, backlog.oldest_age_seconds
    detail = {"pending": pending, "oldest_age_seconds": round(age, 1)}
    summary = f"{pending} pending, oldest {age:.0f}s old"
    if age > settings.ALERT_OUTBOX_LAG_SECONDS:
        return CheckResult(
            "outbox",
            Status.FAILING,
            summary,
            "events are not reaching the engine: check the engine, `runworker` (it runs the relay) and Celery",
            detail,
        )
    if age > settings.DOCTOR_OUTBOX_DEGRADED_SECONDS:
        return CheckResult(
            "outbox", Status.DEGRADED, summary, "the relay is behind; watch it or add a worker", detail
        )
    return CheckResult("outbox", Status.OK, summary, detail=detail)


# Shapes of each provider's credentials: a typo'd or swapped key fails here, not on the first send.
CREDENTIAL_SHAPES: dict[str, list[tuple[str, str, str]]] = {
    "resend": [("RESEND_API_KEY", r"re_[A-Za-z0-9_]{8,}", "starts with re_")],
    "postmark": [
        ("POSTMARK_SERVER_TOKEN", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "a UUID")
    ],
    "sendgrid": [("SENDGRID_API_KEY", r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", "SG.<id>.<secret>")],
    "mailgun": [
        (
            "MAILGUN_API_KEY",
            r"(key-)?[0-9a-f]{32}(-[0-9a-f]{8}-[0-9a-f]{8})?",
            "key-<32 hex> or <32 hex>-<8>-<8>",
        )
    ],
}


def check_email_provider() -> CheckResult:
    provider = (getattr(settings, "EMAIL_PROVIDER", "") or "console").lower()
    backend = settings.EMAIL_BACKEND
    detail = {"provider": provider, "backend": backend}
    anymail = getattr(settings, "ANYMAIL", {}) or {}
    for key, pattern, shape in CREDENTIAL_SHAPES.get(provider, []):
        value = str(anymail.get(key, ""))
        if not re.fullmatch(pattern, value.strip()):
            return CheckResult(
                "email",
                Status.FAILING,
                f"{provider}: {key} is {'missing' if not value else 'not shaped like a ' + provider + ' key'}",
                f"set {key} to the key from the {provider} dashboard ({shape})",
                detail,
            )
    if provider == "ses":
        import os

        key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
        if key_id and not re.fullmatch(r"(AKIA|ASIA)[A-Z0-9]{16}", key_id):
            return CheckResult(
                "email",
                Status.FAILING,
                "ses: AWS_ACCESS_KEY_ID is not shaped like an AWS key id",
                "set AWS_ACCESS_KEY_ID (AKIA... or ASIA..., 20 characters)",
                detail,
            )
    if backend.endswith("smtp.EmailBackend") and not settings.EMAIL_HOST:
        return CheckResult(
            "email", Status.FAILING, "smtp: EMAIL_HOST is empty", "set EMAIL_HOST and EMAIL_PORT", detail
        )
    if not backend.startswith(("anymail.", "emails.", "django.core.mail.backends.smtp")):
        return CheckResult(
            "email",
            Status.DEGRADED,
            f"{provider}: mail is not sent anywhere ({backend.rsplit('.', 2)[-2]} backend)",
            "set EMAIL_PROVIDER (smtp, resend, postmark, ses, sendgrid, mailgun) and its keys",
            detail,
        )
    return CheckResult("email", Status.OK, f"{provider} configured", detail=detail)


def _on_loopback() -> bool:
    return (urlsplit(settings.PUBLIC_BASE_URL).hostname or "") in LOOPBACK_HOSTS


def check_public_url() -> CheckResult:
    url = settings.PUBLIC_BASE_URL
    if settings.DEBUG or url.startswith("https://"):
        return CheckResult("public_url", Status.OK, f"PUBLIC_BASE_URL is {url}")
    # On loopback nothing is exposed yet: a local run, not a production mistake.
    status = Status.DEGRADED if _on_loopback() else Status.FAILING
    return CheckResult(
        "public_url",
        status,
        f"PUBLIC_BASE_URL is {url}: links in email (unsubscribe, tracking) go over plain http",
        "set PUBLIC_BASE_URL to the https address people reach this deployment at",
    )


def check_secret_key() -> CheckResult:
    if settings.DEBUG or settings.SECRET_KEY not in DEFAULT_SECRET_KEYS:
        return CheckResult("secret_key", Status.OK, "SECRET_KEY is set")
    return CheckResult(
        "secret_key",
        Status.DEGRADED if _on_loopback() else Status.FAILING,
        "SECRET_KEY is the published default: sessions and unsubscribe links can be forged",
        'set SECRET_KEY to a long random value: python -c "import secrets; print(secrets.token_urlsafe(50))"',
    )


def check_metrics_dir() -> CheckResult:
    import os

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.PROMETHEUS_MULTIPROC_DIR
    if os.path.isdir(path) and os.access(path, os.W_OK):
        return CheckResult("metrics", Status.OK, f"metrics directory {path} is writable")
    return CheckResult(
        "metrics",
        Status.FAILING,
        f"metrics directory {path} is missing or read-only: /metrics cannot answer",
        "set PROMETHEUS_MULTIPROC_DIR to a writable directory shared by this host's processes",
    )


CHECKS: list[Callable[[], CheckResult]] = [
    check_database,
    check_redis,
    check_engine,
    check_workers,
    check_celery,
    check_outbox,
    check_email_provider,
    check_metrics_dir,
    check_public_url,
    check_secret_key,
]


def checks_run(*, quick: bool = False) -> list[CheckResult]:
    """Every check in order; `quick` (load balancers) does not wait to hear from every Celery worker."""
    results = []
    for check in CHECKS:
        try:
            results.append(check(all_workers=False) if quick and check is check_celery else check())
        except Exception as error:  # a bug in a check is a finding too, never a crash of the doctor
            results.append(
                CheckResult(check.__name__.removeprefix("check_"), Status.FAILING, f"check crashed: {error}")
            )
    return results


def checked_at() -> str:
    return timezone.now().isoformat()
