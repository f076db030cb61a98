from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from contacts.models import ApiKey
from contacts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print its secret once (only a hash is stored)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", help="who or what uses the key, e.g. 'web backend'")
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiKey.Scope.values,
            help="repeat for several; default: ingest",
        )
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--quiet", action="store_true", help="print only the secret")

    def handle(self, *args: Any, **options: Any) -> None:
        expires = None
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] <= 0:
                raise CommandError("--expires-in-days must be positive")
            expires = timezone.now() + timedelta(days=options["expires_in_days"])
        key, secret = api_key_create(
            name=options["name"], scopes=options["scope"] or [ApiKey.Scope.INGEST], expires_at=expires
        )
        if options["quiet"]:
            self.stdout.write(secret)
            return
        self.stdout.write(f"Created API key {key.name!r} with scopes {', '.join(key.scopes)}.")
        self.stdout.write("Secret (shown once, store it now):")
        self.stdout.write(self.style.SUCCESS(secret))
