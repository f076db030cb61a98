"""Time the main Studio pages: Django test client, logged in as a superuser, median of N requests.

DJANGO_SETTINGS_MODULE=bench.settings .venv/bin/python manage.py studio_bench --repeat 7
"""

from __future__ import annotations

import statistics
import time
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse


class Command(BaseCommand):
    help = "Print median milliseconds and query counts for the main Studio pages."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--repeat", type=int, default=5)

    def pages(self) -> list[tuple[str, str]]:
        from contacts.models import Contact, Event
        from emails.models import EmailLog
        from journeys.models import JourneyRun

        run = JourneyRun.objects.filter(status="completed").order_by("-entered_at").first()
        waiting = JourneyRun.objects.filter(status="waiting").order_by("-entered_at").first()
        event = Event.objects.order_by("-occurred_at").first()
        contact = event.contact if event else Contact.objects.first()
        email = EmailLog.objects.order_by("-created_at").first()
        if not (run and contact and email):
            raise CommandError("no data: run studio_seed first")
        runs = reverse("admin:journeys_journeyrun_changelist")
        contacts = reverse("admin:contacts_contact_changelist")
        return [
            ("admin index", reverse("admin:index")),
            ("journeys overview", reverse("admin:studio_journeys")),
            ("journey detail (map)", reverse("admin:studio_journey", args=[run.journey_id])),
            (
                "journey map: runs at a node",
                reverse("admin:studio_journey", args=[run.journey_id])
                + f"?node={quote((waiting.map_node if waiting else run.map_node), safe='')}",
            ),
            ("runs list", runs),
            ("runs: journey+status", f"{runs}?journey_id={run.journey_id}&status=waiting"),
            (
                "runs: node filter",
                f"{runs}?journey_id={run.journey_id}&current_node={waiting.current_node if waiting else ''}",
            ),
            ("runs: waiting 24h", f"{runs}?waiting_until=24h"),
            ("runs: page 41", f"{runs}?p=40"),
            ("run timeline", reverse("admin:journeys_journeyrun_change", args=[run.pk])),
            ("contacts list", contacts),
            ("contact search user_id", f"{contacts}?q={contact.user_id}"),
            ("contact search email prefix", f"{contacts}?q={contact.email[:8]}"),
            ("contact detail", reverse("admin:contacts_contact_change", args=[contact.pk])),
            ("events list", reverse("admin:contacts_event_changelist")),
            ("events: by name", reverse("admin:contacts_event_changelist") + "?q=feature.used"),
            ("email log list", reverse("admin:emails_emaillog_changelist")),
            ("email log: status", reverse("admin:emails_emaillog_changelist") + "?status=clicked"),
            ("email detail (preview)", reverse("admin:emails_emaillog_change", args=[email.pk])),
            ("templates", reverse("admin:studio_templates")),
            ("audit log", reverse("admin:contacts_auditentry_changelist")),
        ]

    def handle(self, *args: Any, **opts: Any) -> None:
        user, _ = get_user_model().objects.get_or_create(
            username="studio-bench", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client()
        client.force_login(user)
        settings.DEBUG = False
        from journeys.models import JourneyRun

        for journey_id in JourneyRun.objects.order_by().values_list("journey_id", flat=True).distinct():
            count = JourneyRun.objects.filter(journey_id=journey_id).count()
            self.stdout.write(f"{journey_id}: {count:,} runs")
        self.stdout.write(f"{'page':32} {'median ms':>10} {'max ms':>8} {'queries':>8}")
        for name, url in self.pages():
            client.get(url)  # warm caches and connections
            times = []
            for _ in range(opts["repeat"]):
                with CaptureQueriesContext(connection) as queries:
                    t0 = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{name}: {url} answered {response.status_code}")
            self.stdout.write(
                f"{name:32} {statistics.median(times):10.1f} {max(times):8.1f} {len(queries.captured_queries):8d}"
            )
