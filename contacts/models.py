from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone


class Contact(models.Model):
    """A person your product knows, keyed by your product's user id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.CharField(max_length=255, unique=True)
    email = models.EmailField(max_length=320, blank=True, db_index=True)
    properties = models.JSONField(default=dict, blank=True)
    # Consent lives on the contact: global unsubscribe and per-category opt-outs.
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    category_opt_outs = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # Categories that are off by default and that the contact chose to receive.
    category_opt_ins = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # Double opt-in: a contact who must confirm gets nothing but the confirmation email until
    # `confirmed_at` is set (the emails app's consent check enforces it for every send).
    # db_default: the set-based ingest and import statements insert rows without naming it.
    confirmation_required = models.BooleanField(default=False, db_default=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Erasure keeps the row (aggregate counts stay right) but drops personal data.
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at"], name="contact_created_idx")]

    def __str__(self) -> str:
        return self.email or self.user_id

    @property
    def is_subscribed(self) -> bool:
        return self.unsubscribed_at is None

    @property
    def awaiting_confirmation(self) -> bool:
        return self.confirmation_required and self.confirmed_at is None

    @property
    def timezone(self) -> str:
        """The contact's IANA time zone: its `timezone` property, or HOGSEND_DEFAULT_TIMEZONE."""
        from contacts.timezones import contact_zone

        return contact_zone(self.properties).key


class Suppression(models.Model):
    """An address nothing may be sent to (bounces, complaints, operator decision)."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", "Hard bounces"
        COMPLAINT = "complaint", "Spam complaint"
        MANUAL = "manual", "Suppressed by an operator"

    email = models.EmailField(max_length=320, unique=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class Event(models.Model):
    """A product event. The row doubles as the outbox for the push to the engine."""

    class DispatchState(models.TextChoices):
        PENDING = "pending", "Waiting for the relay"
        DISPATCHED = "dispatched", "Pushed to the engine"
        # Nothing listened when the relay claimed it: no trigger, task or parked wait.
        SKIPPED = "skipped", "Not needed by the engine"
        # Stored but unreadable (e.g. a timestamp beyond Python's range): set aside, reported.
        QUARANTINED = "quarantined", "Unreadable; set aside"
        # Pushed, then re-pushed as often as allowed, and still no journey decided it (no run,
        # no recorded skip) or a custom task's effect never happened: an operator must look.
        UNSETTLED = "unsettled", "Pushed, never decided; gave up re-pushing"

    class Source(models.TextChoices):
        API = "api", "HTTP API"
        JOURNEY = "journey", "Triggered by a journey"
        SYSTEM = "system", "Emitted by Hogsend"
        WEBHOOK = "webhook", "A webhook source (Stripe, Clerk, Segment, ...)"
        BROWSER = "browser", "A browser, with a publishable key"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the two indexes that lead with the contact serve every lookup by it.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events", db_index=False)
    name = models.CharField(max_length=255)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    # Unique (event_idempotency_key_uniq), without the pattern index Django adds for unique=True:
    # keys are only ever looked up whole.
    # NULL, not "", for no key: the constraint admits any number of NULLs.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    dispatch_state = models.CharField(
        max_length=16, choices=DispatchState.choices, default=DispatchState.PENDING
    )
    dispatch_attempts = models.PositiveIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Runs this event ended through exit_on, kept so an idempotent retry answers the same.
    exited_run_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    # The reconciler's part (journeys/reconcile.py): how often a pushed event that nothing
    # decided was pushed again, and which custom tasks have had their effect for it.
    redispatches = models.PositiveSmallIntegerField(default=0, db_default=0)
    redispatched_at = models.DateTimeField(null=True, blank=True)
    tasks_done = ArrayField(models.CharField(max_length=200), default=list, db_default="{}", blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            # Every index here is one more write per ingested event; each serves a named reader.
            # History reads and exits (a contact's events of a name over time), the timeline and the
            # Studio's contact page (a contact's events, newest first), segments and backtests (one
            # name over a period), the Studio's event list (newest first), the relay (pending) and
            # the reconciler (pushed).
            models.Index(fields=["contact", "name", "occurred_at"], name="event_contact_name_idx"),
            models.Index(fields=["contact", "-occurred_at"], name="event_contact_time_idx"),
            models.Index(fields=["name", "-occurred_at"], name="event_name_time_idx"),
            models.Index(fields=["-occurred_at"], name="event_time_idx"),
            models.Index(
                fields=["received_at"],
                name="event_outbox_pending_idx",
                condition=Q(dispatch_state="pending"),
            ),
            # The reconciler reads pushed events in the order they were pushed.
            models.Index(
                fields=["dispatched_at"],
                name="event_dispatched_idx",
                condition=Q(dispatch_state="dispatched"),
            ),
        ]
        constraints = [
            # Ingest's ON CONFLICT (idempotency_key) relies on it (contacts/ingest.py).
            models.UniqueConstraint(fields=["idempotency_key"], name="event_idempotency_key_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class AwaitedEvent(models.Model):
    """A parked journey wait: the outbox relay pushes this contact's `name` events until `until`.

    Written when a run starts waiting on the engine and removed when the wait resolves; a run that
    ended mid-wait leaves its row, which expires with `until`. No foreign key to the run: the
    contacts app knows nothing of journeys.
    """

    run_id = models.UUIDField()
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    since = models.DateTimeField()
    until = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["contact", "name"], name="awaited_contact_name_idx"),
            models.Index(fields=["until"], name="awaited_until_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["run_id", "name", "since"], name="awaited_once_per_wait"),
        ]

    def __str__(self) -> str:
        return f"{self.name} for run {self.run_id} until {self.until:%Y-%m-%d %H:%M}"


class ApiKey(models.Model):
    """A bearer key. Only a SHA-256 of the secret is stored; the secret is shown once.

    A publishable key (`pk_...`, the `public` scope alone) is meant to be seen: it sits in web
    pages and may only send events, from the browser origins it lists.
    """

    class Scope(models.TextChoices):
        INGEST = "ingest", "Send events and upsert contacts"
        READ = "read", "Read contacts and timelines"
        ADMIN = "admin", "Everything, including transactional sends"
        PUBLIC = "public", "Send events from the browser origins the key allows (publishable key)"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices), default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Ingest requests per second this key may send; empty: INGEST_RATE_LIMIT_REQUESTS.
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Ingest requests per second; empty for the deployment's default."
    )
    # Publishable keys only: the exact origins (scheme://host[:port]) whose pages may use the key.
    allowed_origins = ArrayField(models.CharField(max_length=255), default=list, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def is_publishable(self) -> bool:
        return self.Scope.PUBLIC in self.scopes

    @property
    def masked(self) -> str:
        return f"{'pk' if self.is_publishable else 'hsk'}_{self.prefix}_…"

    def allows(self, scope: str) -> bool:
        return self.Scope.ADMIN in self.scopes or scope in self.scopes


class AuditEntry(models.Model):
    """One operator change made in Studio: who, what, when."""

    actor = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=100)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.target_type}:{self.target_id}"


class ConsentChange(models.Model):
    """One row of the consent ledger: a change of a contact's consent, written in the transaction
    that made it. Append-only; erasure blanks its personal fields but keeps the row."""

    class Kind(models.TextChoices):
        CONFIRMATION_REQUESTED = "confirmation_requested", "Asked to confirm (double opt-in)"
        CONFIRMED = "confirmed", "Confirmed the subscription"
        SUBSCRIBED = "subscribed", "Subscribed (single opt-in form)"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        RESUBSCRIBED = "resubscribed", "Resubscribed"
        CATEGORY_OPTED_OUT = "category_opted_out", "Opted out of a category"
        CATEGORY_OPTED_IN = "category_opted_in", "Opted in to a category"
        SUPPRESSED = "suppressed", "Address suppressed"
        UNSUPPRESSED = "unsuppressed", "Address suppression lifted"
        IMPORTED = "imported", "Consent set by an import"
        ERASED = "erased", "Personal data erased"

    class Source(models.TextChoices):
        SIGNUP_FORM = "signup_form", "Signup form"
        CONFIRMATION_LINK = "confirmation_link", "Confirmation link"
        PREFERENCE_CENTER = "preference_center", "Preference center"
        UNSUBSCRIBE_PAGE = "unsubscribe_page", "Unsubscribe page"
        ONE_CLICK = "one_click", "One-click unsubscribe (RFC 8058)"
        STUDIO = "studio", "Studio (an operator)"
        ADMIN_API = "admin_api", "Admin API"
        API = "api", "Events & contacts API"
        IMPORT = "import", "Contacts import"
        BOUNCE = "bounce", "Hard bounces reported by the provider"
        COMPLAINT = "complaint", "Spam complaint reported by the provider"
        SYSTEM = "system", "Hogsend"

    id = models.BigAutoField(primary_key=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="consent_changes"
    )
    # The address the change was about (suppressions are by address, and may predate any contact).
    email = models.EmailField(max_length=320, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    category = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=32, choices=Source.choices)
    # Who acted, when an operator did (a Studio user or an admin-API key's label).
    actor = models.CharField(max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    # SHA-256 of the signed link that made the change: it identifies the link without the ledger
    # becoming a store of working links.
    token_sha256 = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # db_default: the set-based import writes its rows in SQL.
    occurred_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["contact", "-occurred_at"], name="consent_contact_time_idx"),
            # Rows about an address no contact had yet (a suppression): read into its history.
            # Partial, so an import's row per contact costs no second index entry.
            models.Index(
                fields=["email"], name="consent_orphan_email_idx", condition=Q(contact__isnull=True)
            ),
            # The confirmation sweep reads recent requests only.
            models.Index(
                fields=["occurred_at"],
                name="consent_confirm_requests_idx",
                condition=Q(kind="confirmation_requested"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} via {self.source} @ {self.occurred_at:%Y-%m-%d %H:%M}"
