"""Writes of the operations app: alert incidents and their notifications."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from operations.alerts import RULES, Measurement
from operations.models import Alert

logger = logging.getLogger(__name__)
ALERT_RUNS_KEY = "hogsend:alerts:runs"


def alerts_evaluate(*, now: datetime | None = None) -> dict[str, int]:
    """Measure every rule; open an incident for each newly breached subject, resolve the ones that
    recovered. Returns how many fired and resolved.

    1. A rule that cannot measure (its store is down) is skipped: its incidents neither fire nor
       resolve on a missing reading.
    2. An incident is a row with status firing; a partial unique constraint keeps one per rule and
       subject, so a second evaluation (or two beats at once) never fires it twice.
    3. Notifications go out after commit, carrying the alert's id.
    """
    now = now or timezone.now()
    fired = resolved = 0
    for rule in RULES:
        name = rule.__name__.removeprefix("rule_")
        try:
            measurements = rule(now)
        except Exception as error:
            logger.warning("alert rule %s could not measure: %s", name, error)
            continue
        breached = {m.subject: m for m in measurements if m.breached}
        current = {m.subject: m for m in measurements}
        for measurement in breached.values():
            if alert_fire(measurement=measurement, now=now):
                fired += 1
        for alert in Alert.objects.filter(rule=name, status=Alert.Status.FIRING):
            if alert.subject in breached:
                Alert.objects.filter(pk=alert.pk).update(last_value=breached[alert.subject].value)
            elif alert_resolve(alert_id=alert.pk, measurement=current.get(alert.subject), now=now):
                resolved += 1
    _count_evaluation()
    return {"fired": fired, "resolved": resolved}


def alert_fire(*, measurement: Measurement, now: datetime) -> Alert | None:
    """Open an incident unless one is already firing for this rule and subject."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=measurement.rule,
                subject=measurement.subject,
                summary=measurement.summary,
                value=measurement.value,
                last_value=measurement.value,
                threshold=measurement.threshold,
                fired_at=now,
            )
            transaction.on_commit(lambda: alert_notify(alert_id=alert.pk))
    except IntegrityError:  # already firing: the same incident, not a new one
        return None
    logger.warning("alert firing: %s", measurement.summary)
    return alert


def alert_resolve(*, alert_id: int, measurement: Measurement | None, now: datetime) -> bool:
    with transaction.atomic():
        updated = Alert.objects.filter(pk=alert_id, status=Alert.Status.FIRING).update(
            status=Alert.Status.RESOLVED,
            resolved_at=now,
            last_value=measurement.value if measurement else None,
        )
        if updated:
            transaction.on_commit(lambda: alert_notify(alert_id=alert_id))
    return bool(updated)


def alert_notify(*, alert_id: int) -> None:
    """Tell the operators: mail to ALERT_EMAILS and every outbound destination that takes alerts.

    A notification channel that fails is logged and recorded, never allowed to stop the others.
    """
    alert = Alert.objects.get(pk=alert_id)
    state = "FIRING" if alert.status == Alert.Status.FIRING else "resolved"
    subject = f"[Hogsend] {state}: {alert.rule}{f' ({alert.subject})' if alert.subject else ''}"
    body = (
        f"{alert.summary}\n\nFired at {alert.fired_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f"; resolved at {alert.resolved_at:%Y-%m-%d %H:%M:%S} UTC" if alert.resolved_at else "")
        + f"\nHistory: {settings.PUBLIC_BASE_URL}/admin/operations/alert/{alert.pk}/change/\n"
    )
    sent: list[str] = []
    if settings.ALERT_EMAILS:
        try:
            send_mail(subject, body, None, list(settings.ALERT_EMAILS))
            sent.append(f"email:{alert.status}")
        except Exception as error:
            logger.error("alert mail for %s failed: %s", alert, error)
    if _destinations_notify(alert=alert, subject=subject, body=body):
        sent.append(f"destinations:{alert.status}")
    if sent:
        Alert.objects.filter(pk=alert.pk).update(notified=[*alert.notified, *sent])


def _destinations_notify(*, alert: Alert, subject: str, body: str) -> int:
    """Through the integrations app's outbound destinations (Slack, webhooks) that take
    `operator.alert`; returns how many deliveries were queued."""
    from integrations.lifecycle import operator_alert_send

    payload: dict[str, Any] = {
        "rule": alert.rule,
        "subject": alert.subject,
        "status": alert.status,
        "summary": alert.summary,
        "value": alert.value,
        "threshold": alert.threshold,
        "firedAt": alert.fired_at.isoformat(),
        "resolvedAt": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }
    try:
        return len(operator_alert_send(title=subject, text=body, payload=payload) or [])
    except Exception as error:
        logger.error("alert %s to destinations failed: %s", alert, error)
        return 0


def _count_evaluation() -> None:
    """A counter of finished evaluations, so tests and the doctor can tell the schedule is turning."""
    from operations.checks import redis_client

    try:
        redis_client().incr(ALERT_RUNS_KEY)
    except Exception as error:
        logger.warning("could not record the alert evaluation: %s", error)


def beat_heartbeat_record() -> None:
    """Beat scheduled this and a Celery worker ran it: both are alive (read by the doctor)."""
    import time

    from operations.checks import BEAT_HEARTBEAT_KEY, redis_client

    redis_client().set(BEAT_HEARTBEAT_KEY, str(time.time()), ex=3600)
