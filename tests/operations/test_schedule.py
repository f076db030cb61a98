"""Beat runs the operations jobs: every scheduled name is a task the worker knows."""

from __future__ import annotations

from django.conf import settings

from hogsend.celery import app


def test_beat_schedules_the_heartbeat_the_alert_rules_and_retention():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {
        "operations.beat_heartbeat",
        "operations.alerts_evaluate",
        "operations.retention_run",
    } <= scheduled
    assert scheduled <= set(app.tasks)
