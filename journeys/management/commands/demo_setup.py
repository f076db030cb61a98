from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from contacts.models import ApiKey
from contacts.services import api_key_create
from journeys.registry import registry

DEMO_KEY_NAME = "demo"


class Command(BaseCommand):
    help = "First-run demo: a Studio login and an API key (each printed once), and how to send an event."

    def handle(self, *args: Any, **options: Any) -> None:
        base = settings.PUBLIC_BASE_URL
        users = get_user_model()
        if not users.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            users.objects.create_superuser("admin", "admin@example.com", password)
            self.stdout.write(f"Studio login (shown once): admin / {password}   → {base}/admin/")
        else:
            self.stdout.write(
                f"Studio: {base}/admin/ (existing login; `manage.py changepassword admin` to reset)"
            )

        self.stdout.write("Journeys: " + ", ".join(j.id for j in registry.loaded()))
        if ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).exists():
            self.stdout.write(
                "API key: the demo key was printed on first run; make another with "
                "`manage.py create_api_key NAME --scope ingest --scope read`"
            )
            secret = "$HOGSEND_API_KEY"
        else:
            _, secret = api_key_create(name=DEMO_KEY_NAME, scopes=["ingest", "read"])
            self.stdout.write(f"API key (shown once, store it now): {secret}")
        self.stdout.write("Send your first event:")
        self.stdout.write(
            f"  curl -X POST {base}/v1/events -H 'Authorization: Bearer {secret}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"name": "user.created", "userId": "user_123", "userEmail": "ada@example.com"}\''
        )
