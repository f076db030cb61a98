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
        parser.add_argument(
            "--publishable",
            action="store_true",
            help="a publishable key (pk_...) for events from web pages: the public scope, with --origin",
        )
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="an origin whose pages may use the publishable key, e.g. https://app.example.com (repeat)",
        )
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--quiet", action="store_true", help="print only the secret")

    def handle(self, *args: Any, **options: Any) -> None:
        expires = None
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] <= 0:
                raise CommandError("--expires-in-days must be positive")
            expires = timezone.now() + timedelta(days=options["expires_in_days"])
        scopes = options["scope"] or [ApiKey.Scope.PUBLIC if options["publishable"] else ApiKey.Scope.INGEST]
        if options["publishable"] and scopes != [ApiKey.Scope.PUBLIC]:
            raise CommandError("--publishable makes a key with the public scope only; leave out --scope")
        try:
            key, secret = api_key_create(
                name=options["name"], scopes=scopes, expires_at=expires, allowed_origins=options["origin"]
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        if options["quiet"]:
            self.stdout.write(secret)
            return
        self.stdout.write(f"Created API key {key.name!r} with scopes {', '.join(key.scopes)}.")
        if key.allowed_origins:
            self.stdout.write(f"Allowed origins: {', '.join(key.allowed_origins)}.")
        self.stdout.write("Secret (shown once, store it now):")
        self.stdout.write(self.style.SUCCESS(secret))
