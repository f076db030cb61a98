from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from contacts.models import Contact, Event


class JourneyRun(models.Model):
    """One contact's trip through one journey."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        WAITING = "waiting", "Waiting"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        EXITED = "exited", "Exited"

    LIVE_STATUSES = (Status.ACTIVE, Status.WAITING)
    LIVE_STATUSES_SQL = ", ".join(f"'{s}'" for s in LIVE_STATUSES)  # for `status IN (...)` in SQL text
    # A status may only move along these edges; anything else is a bug worth raising.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.ACTIVE: frozenset({Status.WAITING, Status.COMPLETED, Status.FAILED, Status.EXITED}),
        Status.WAITING: frozenset({Status.ACTIVE, Status.EXITED, Status.FAILED}),
        Status.FAILED: frozenset({Status.ACTIVE}),  # an operator retry
        Status.COMPLETED: frozenset(),
        Status.EXITED: frozenset(),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    journey_id = models.CharField(max_length=100)
    # No index of its own: run_contact_journey_idx and the live-run constraint lead with it.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="journey_runs", db_index=False
    )
    trigger_event = models.ForeignKey(
        Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    properties = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    current_node = models.CharField(max_length=200, blank=True)
    # The journey-map node the run last passed (journeys/journey_map.py): where it is on the map.
    map_node = models.CharField(max_length=220, blank=True, default="", db_default="")
    waiting_until = models.DateTimeField(null=True, blank=True)
    entered_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    engine_run_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The journey's version at enrollment (journeys.versions): which code this run started on.
    version = models.CharField(max_length=16, blank=True, default="", db_default="")
    # In the journey's holdout (journeys.experiments): the run goes on, but nothing is sent.
    held_out = models.BooleanField(default=False, db_default=False)
    # In the global control group at enrollment (emails.control_group), not held out: its
    # marketing sends are skipped as `control_group`, so readouts count it apart from the arms.
    control_group = models.BooleanField(default=False, db_default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-entered_at"]
        constraints = [
            # The invariant: at most one live run per contact and journey, even under races.
            models.UniqueConstraint(
                fields=["contact", "journey_id"],
                condition=Q(status__in=["active", "waiting"]),
                name="journeyrun_one_live_per_contact",
            ),
            # One trigger event enrolls a contact at most once (a re-pushed event is harmless).
            models.UniqueConstraint(
                fields=["journey_id", "trigger_event"],
                condition=Q(trigger_event__isnull=False),
                name="journeyrun_once_per_trigger_event",
            ),
        ]
        indexes = [
            models.Index(fields=["journey_id", "status", "-entered_at"], name="run_journey_status_idx"),
            models.Index(fields=["contact", "journey_id", "-entered_at"], name="run_contact_journey_idx"),
            models.Index(fields=["status", "-entered_at"], name="run_status_idx"),
            models.Index(fields=["journey_id", "current_node"], name="run_journey_node_idx"),
            # Who is where now, for the journey map: live runs only.
            models.Index(
                fields=["journey_id", "map_node", "-entered_at"],
                condition=Q(status__in=["active", "waiting"]),
                name="run_journey_map_live_idx",
            ),
            models.Index(fields=["journey_id", "version"], name="run_journey_version_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} for {self.contact_id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES


class EnrollmentSkip(models.Model):
    """A trigger that did not enroll, and the guard that said no."""

    class Reason(models.TextChoices):
        JOURNEY_DISABLED = "journey_disabled"
        TRIGGER_CONDITIONS_NOT_MET = "trigger_conditions_not_met"
        ALREADY_ENTERED_ONCE = "already_entered_once"
        PERIOD_NOT_ELAPSED = "period_not_elapsed"
        USER_UNSUBSCRIBED = "user_unsubscribed"
        ALREADY_ACTIVE = "already_active"
        # A digest journey's trigger that an open digest collected (journeys/digests.py).
        DIGEST_COLLECTED = "digest_collected"
        # A digest journey's trigger that no digest holds (ingested before the journey was loaded).
        NOT_COLLECTED = "not_collected"

    journey_id = models.CharField(max_length=100)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    trigger_event = models.ForeignKey(
        Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=40, choices=Reason.choices)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["journey_id", "-created_at"], name="skip_journey_idx")]

    def __str__(self) -> str:
        return f"{self.journey_id}: {self.reason}"


class RunStep(models.Model):
    """The step log: what a run did at each position, so a replay returns the same answers."""

    class Kind(models.TextChoices):
        SLEEP = "sleep"
        WAIT = "wait"
        CHECKPOINT = "checkpoint"
        TRIGGER = "trigger"
        SEND = "send"
        HISTORY = "history"
        GUARD = "guard"
        NOW = "now"
        EXIT = "exit"
        VARIANT = "variant"
        DIGEST = "digest"

    # No index of its own: the (run, seq) constraint leads with it.
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="steps", db_index=False)
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=200, blank=True)
    result = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="runstep_unique_position"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.label}"


class JourneyMapEdge(models.Model):
    """How many runs of a journey went from one map node to the next, counted as each step is first
    recorded (and as runs end), so the Studio draws a journey's map from this table, never by scanning
    step logs. A node is `kind:label` (`send:activation/welcome`, `wait:await-csm`); "" is the entry;
    `exit:<reason>`, `end:completed` and `end:failed` are where runs ended.

    An edge is counted on several rows, one per `shard` (the writing connection's backend pid
    modulo `journeys.journey_map.MAP_EDGE_SHARDS`), summed on read: every start of a journey
    passes the same first edges, and one row per edge made every concurrent start queue on its
    lock and every update walk the versions the others left."""

    journey_id = models.CharField(max_length=100)
    source = models.CharField(max_length=220, blank=True)
    target = models.CharField(max_length=220)
    shard = models.PositiveSmallIntegerField(default=0, db_default=0)
    runs = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey_id", "source", "target", "shard"], name="journeymapedge_unique_shard"
            )
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}: {self.source or '(entry)'} → {self.target}: {self.runs} runs"


class JourneySetting(models.Model):
    """An operator's runtime override of a journey's code-defined enabled flag."""

    journey_id = models.CharField(max_length=100, primary_key=True)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.journey_id}: {'enabled' if self.enabled else 'disabled'}"


class VariantExposure(models.Model):
    """A run was shown an arm of an experiment (`ctx.variant`): once per run and key."""

    journey_id = models.CharField(max_length=100)
    version = models.CharField(max_length=16, blank=True)
    key = models.CharField(max_length=100)
    arm = models.CharField(max_length=100)
    # The arm's place in the journey's list of arms: the first is the baseline a readout compares to.
    arm_index = models.PositiveSmallIntegerField(default=0, db_default=0)
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="exposures")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    exposed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="exposure_once_per_run_key")]
        indexes = [models.Index(fields=["journey_id", "key", "arm"], name="exposure_journey_key_idx")]

    def __str__(self) -> str:
        return f"{self.journey_id} {self.key}={self.arm} (run {self.run_id})"


class GoalConversion(models.Model):
    """A run reached its journey's goal: the goal event occurred within the window after the
    trigger. At most one per run; its arms and holdout flag are the run's."""

    run = models.OneToOneField(JourneyRun, on_delete=models.CASCADE, related_name="conversion")
    journey_id = models.CharField(max_length=100)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    converted_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["journey_id", "-converted_at"], name="conversion_journey_idx")]

    def __str__(self) -> str:
        return f"{self.journey_id}: run {self.run_id} converted"


class Digest(models.Model):
    """One contact's digest of a digest journey: the events collected over one window.

    Ingest opens it with the first matching event (its opener, which starts the run) and collects
    the ones after it (`DigestItem`); the run's `ctx.digest` closes it when the window ends and
    returns its items. At most one is open per journey, contact and key, so racing events can
    never open two (journeys/digests.py).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        # Its run ended before the window closed (an exit), or its opener never enrolled.
        DISCARDED = "discarded", "Discarded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    journey_id = models.CharField(max_length=100)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    opened_by = models.ForeignKey(Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    run = models.ForeignKey(
        JourneyRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="digests"
    )
    item_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey_id", "contact", "key"],
                condition=Q(status="open"),
                name="digest_one_open_per_contact",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}:{self.key} for {self.contact_id} ({self.status}, {self.item_count})"


class DigestItem(models.Model):
    """An event a digest collected (its opener included); an event is in one digest per journey."""

    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="items")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    journey_id = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "journey_id"], name="digestitem_once_per_journey"),
        ]

    def __str__(self) -> str:
        return f"{self.digest_id}: {self.event_id}"
