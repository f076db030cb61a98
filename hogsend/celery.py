"""The Celery app: short side-effect jobs and periodic maintenance, never journey work."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hogsend.settings")

app = Celery("hogsend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
