"""Seed Studio-scale data fast: contacts, events, journey runs with step logs, email logs.

Rows go in with PostgreSQL COPY in chunks, with progress output; finishes with ANALYZE so the
estimated-count paginator has numbers to read. Meant for a benchmark database:

    DATABASE_URL=postgres://hogsend@127.0.0.1:54329/hogsend_bench \
        DJANGO_SETTINGS_MODULE=bench.settings .venv/bin/python manage.py studio_seed --events 1000000 --runs 100000
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone

from journeys.journey_map import journey_map_rebuild

# A path per shipped journey: (kind, label, template-or-None). Runs stop somewhere along it.
PATHS: dict[str, list[tuple[str, str]]] = {
    "activation-welcome": [
        ("send", "activation/welcome"),
        ("sleep", "post-welcome"),
        ("history", "has_event:feature.used"),
        ("checkpoint", "branch:nudge"),
        ("send", "activation/nudge"),
    ],
    "churn-prevention": [
        ("send", "churn-payment-failed"),
        ("sleep", "first-retry"),
        ("history", "has_event:payment.succeeded"),
        ("send", "churn-payment-failed"),
        ("sleep", "final-notice"),
        ("send", "churn-payment-failed"),
    ],
    "conversion-abandoned-checkout": [
        ("send", "conversion-winback-offer"),
        ("sleep", "day-1-followup"),
        ("history", "has_event:checkout.completed"),
        ("send", "conversion-winback-offer"),
    ],
    "concierge-onboarding": [
        ("trigger", "csm.assignment_requested"),
        ("checkpoint", "csm-paged"),
        ("wait", "await-csm"),
        ("trigger", "csm.assignment_requested"),
        ("wait", "await-csm-2"),
        ("guard", "is_subscribed"),
        ("send", "onboarding/enterprise-welcome"),
    ],
}
TRIGGERS = {
    "activation-welcome": "user.created",
    "churn-prevention": "payment.failed",
    "conversion-abandoned-checkout": "checkout.abandoned",
    "concierge-onboarding": "user.signed_up",
}
OTHER_EVENTS = [
    "page.viewed",
    "feature.used",
    "setup.completed",
    "payment.succeeded",
    "checkout.completed",
    "trial.started",
    "subscription.created",
]
PARKING = {"sleep", "wait"}


class Command(BaseCommand):
    help = "Seed contacts, events, journey runs, steps and email logs at benchmark volume (COPY, chunked)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--contacts", type=int, default=50_000)
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--runs", type=int, default=100_000)
        parser.add_argument("--chunk", type=int, default=50_000)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--journey", choices=sorted(PATHS), help="every run in this one journey")

    def handle(self, *args: Any, **opts: Any) -> None:
        rng = random.Random(opts["seed"])
        started = time.monotonic()
        now = timezone.now()
        tag = uuid.uuid4().hex[:6]
        n_contacts = opts["contacts"]
        journeys = [opts["journey"]] if opts["journey"] else list(PATHS)
        n_runs = min(opts["runs"], n_contacts * len(journeys))
        n_events = max(opts["events"], n_runs)
        self.chunk = opts["chunk"]

        contacts = [uuid.uuid4() for _ in range(n_contacts)]
        self._copy(
            "contacts_contact",
            [
                "id",
                "user_id",
                "email",
                "properties",
                "category_opt_outs",
                "category_opt_ins",
                "created_at",
                "updated_at",
            ],
            (
                (
                    cid,
                    f"seed-{tag}-{i}",
                    f"user{i}.{tag}@example.com",
                    json.dumps({"first_name": f"User{i}", "plan": rng.choice(["free", "pro", "enterprise"])}),
                    "{}",
                    "{}",
                    now - timedelta(days=rng.uniform(0, 90)),
                    now,
                )
                for i, cid in enumerate(contacts)
            ),
            n_contacts,
        )

        # Runs: distinct (contact, journey) pairs, so the one-live-run constraint always holds.
        pairs = rng.sample(range(n_contacts * len(journeys)), n_runs)
        runs, steps, emails, trigger_events = [], [], [], []
        for pair in pairs:
            contact_id, journey_id = contacts[pair // len(journeys)], journeys[pair % len(journeys)]
            run_id, event_id = uuid.uuid4(), uuid.uuid4()
            entered = now - timedelta(days=rng.uniform(0, 45))
            path = PATHS[journey_id]
            stop = rng.randint(1, len(path))
            t, node, status, waiting_until, ended, reason, error = (
                entered,
                "",
                "completed",
                None,
                None,
                "",
                "",
            )
            for seq, (kind, label) in enumerate(path[:stop]):
                t = t + timedelta(minutes=rng.uniform(1, 60))
                result: dict[str, Any] = {}
                if kind in ("checkpoint", "sleep", "wait"):
                    node = label
                if kind == "send":
                    email_id = uuid.uuid4()
                    emails.append(
                        (
                            email_id,
                            contact_id,
                            run_id,
                            label,
                            t,
                            f"user{pair // len(journeys)}.{tag}@example.com",
                        )
                    )
                    result = {"email_id": str(email_id), "status": "sent", "reason": ""}
                elif kind in PARKING:
                    until = t + timedelta(days=1)
                    result = {
                        "slept_at" if kind == "sleep" else "since": t.isoformat(),
                        "until": until.isoformat(),
                    }
                    is_last = seq == stop - 1
                    if is_last and until > now:
                        status, waiting_until = "waiting", until
                    elif not is_last:
                        result["resumed_at"] = until.isoformat()
                        if kind == "wait":
                            result["timed_out"] = True
                        t = until
                elif kind == "trigger":
                    result = {"event_id": str(uuid.uuid4()), "exited_run_ids": []}
                elif kind == "history":
                    result = {"found": False, "count": 0}
                elif kind == "guard":
                    result = {"subscribed": True}
                steps.append((run_id, seq, kind, label, json.dumps(result), t))
            if status != "waiting":
                roll = rng.random()
                if stop < len(path) and roll < 0.6:
                    status, reason = (
                        "exited",
                        "exit_on:" + rng.choice(["user.deleted", "checkout.completed", "payment.succeeded"]),
                    )
                elif stop < len(path) and roll < 0.7:
                    status, error = (
                        "failed",
                        "Traceback (most recent call last):\n  ...\nTimeoutError: provider",
                    )
                elif stop < len(path):
                    status = "active"
                ended = None if status == "active" else t
            runs.append(
                (
                    run_id,
                    journey_id,
                    contact_id,
                    event_id,
                    json.dumps({}),
                    status,
                    node,
                    waiting_until,
                    entered,
                    ended,
                    reason,
                    error,
                    f"seed-{run_id}",
                    now,
                )
            )
            trigger_events.append((event_id, contact_id, TRIGGERS[journey_id], entered))

        def event_rows() -> Any:
            for event_id, contact_id, name, at in trigger_events:
                yield (event_id, contact_id, name, "{}", at, at, None, "api", "dispatched", 1, at, "{}")
            for _ in range(n_events - len(trigger_events)):
                at = now - timedelta(days=rng.uniform(0, 60))
                yield (
                    uuid.uuid4(),
                    contacts[rng.randrange(n_contacts)],
                    rng.choice(OTHER_EVENTS),
                    json.dumps({"path": "/app", "n": rng.randint(1, 9)}),
                    at,
                    at,
                    None,
                    "api",
                    "dispatched",
                    1,
                    at,
                    "{}",
                )

        self._copy(
            "contacts_event",
            [
                "id",
                "contact_id",
                "name",
                "properties",
                "occurred_at",
                "received_at",
                "idempotency_key",
                "source",
                "dispatch_state",
                "dispatch_attempts",
                "dispatched_at",
                "exited_run_ids",
            ],
            event_rows(),
            n_events,
        )
        self._copy(
            "journeys_journeyrun",
            [
                "id",
                "journey_id",
                "contact_id",
                "trigger_event_id",
                "properties",
                "status",
                "current_node",
                "waiting_until",
                "entered_at",
                "ended_at",
                "exit_reason",
                "error",
                "engine_run_id",
                "updated_at",
            ],
            runs,
            len(runs),
        )
        self._copy(
            "journeys_runstep", ["run_id", "seq", "kind", "label", "result", "recorded_at"], steps, len(steps)
        )
        statuses = ["sent"] * 5 + ["delivered"] * 3 + ["opened"] * 2 + ["clicked", "bounced", "suppressed"]
        self._copy(
            "emails_emaillog",
            [
                "id",
                "to_email",
                "contact_id",
                "run_id",
                "template",
                "subject",
                "category",
                "props",
                "status",
                "status_reason",
                "idempotency_key",
                "provider_message_id",
                "created_at",
                "sent_at",
                "opened_at",
                "clicked_at",
                "updated_at",
            ],
            (
                (
                    eid,
                    to,
                    cid,
                    rid,
                    template,
                    "Seeded email",
                    "journey",
                    json.dumps({"first_name": "Ada", "grace_period_days": 2, "discount_percent": 10}),
                    (st := rng.choice(statuses)),
                    "",
                    f"seed:{eid}",
                    "",
                    at,
                    at,
                    at if st in ("opened", "clicked") else None,
                    at if st == "clicked" else None,
                    at,
                )
                for eid, cid, rid, template, at, to in emails
            ),
            len(emails),
        )
        self.stdout.write("journey maps from the step logs …")
        journey_map_rebuild()
        self.stdout.write("ANALYZE …")
        with connection.cursor() as cursor:
            for table in (
                "contacts_contact",
                "contacts_event",
                "journeys_journeyrun",
                "journeys_runstep",
                "journeys_journeymapedge",
                "emails_emaillog",
            ):
                cursor.execute(f"ANALYZE {table}")
        self.stdout.write(
            self.style.SUCCESS(
                f"seeded {n_contacts:,} contacts, {n_events:,} events, {len(runs):,} runs, {len(steps):,} steps, "
                f"{len(emails):,} emails in {time.monotonic() - started:.1f}s"
            )
        )

    def _copy(self, table: str, columns: list[str], rows: Any, total: int) -> None:
        """COPY rows in chunks (one transaction each), printing progress.

        Columns the seed does not name get the model field's default, so a column another change adds
        (with a default) does not break the seed.
        """
        model = next(m for m in apps.get_models() if m._meta.db_table == table)
        fields = [f for f in model._meta.concrete_fields]
        given = {name: i for i, name in enumerate(columns)}
        missing = [
            f
            for f in fields
            if f.column not in given
            and not (f.primary_key and f.get_internal_type() in ("AutoField", "BigAutoField"))
        ]
        extra = [f.get_db_prep_save(f.get_default(), connection) for f in missing]
        all_columns = columns + [f.column for f in missing]
        started = time.monotonic()
        done = 0
        iterator = iter(rows)
        while True:
            with connection.cursor() as cursor:
                raw = cursor.cursor
                with raw.copy(f"COPY {table} ({', '.join(all_columns)}) FROM STDIN") as copy:
                    written = 0
                    for row in iterator:
                        copy.write_row((*row, *extra))
                        written += 1
                        if written >= self.chunk:
                            break
            done += written
            self.stdout.write(f"  {table}: {done:,}/{total:,} ({time.monotonic() - started:.1f}s)")
            if written < self.chunk:
                break
