from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from contacts.models import Contact


class Broadcast(models.Model):
    """A one-off send of a template (or an enrollment into a journey) to an audience.

    The audience is a segment (`segment_id`) or a saved filter (`filter`: conditions over contact
    properties, the journeys' condition language). Its recipients are written once, set-based,
    when the broadcast starts (`BroadcastRecipient`); workers then claim and send them in batches
    at `rate` sends a second.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"  # waiting for `send_at`
        RUNNING = "running", "Sending"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    LIVE_STATUSES = (Status.SCHEDULED, Status.RUNNING, Status.PAUSED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    # What is sent: a template with fixed props, or an enrollment into a journey.
    template = models.CharField(max_length=200, blank=True)
    props = models.JSONField(default=dict, blank=True)
    category = models.CharField(max_length=64, blank=True)
    journey_id = models.CharField(max_length=200, blank=True)
    # Who: a segment's members or the contacts a saved filter matches.
    segment_id = models.CharField(max_length=200, blank=True)
    filter = models.JSONField(default=list, blank=True)
    # When: at once (no send_at), at a moment, or at a wall-clock time on a date in each
    # recipient's own time zone (local_time + local_date; send_at is then the earliest such moment
    # on earth, when the recipients are written, each with its own `due_at`).
    send_at = models.DateTimeField(null=True, blank=True)
    local_time = models.TimeField(null=True, blank=True)
    local_date = models.DateField(null=True, blank=True)
    # Passed to every send (emails.policy): who keeps a contested frequency-cap slot, and whether a
    # capped send is skipped or deferred to the next free slot.
    priority = models.SmallIntegerField(default=0)
    on_cap = models.CharField(max_length=8, default="skip")
    # Sends per second across every worker; 0 sends as fast as the workers go.
    rate = models.FloatField(default=50.0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    recipients_total = models.PositiveIntegerField(default=0)
    # Pacing shared by every worker: the next moment a batch may start (one conditional UPDATE).
    next_slot_at = models.DateTimeField(null=True, blank=True)
    # The last time a worker drained this broadcast; the tick hands a stale one to a new worker.
    drained_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["status"],
                name="broadcast_live_idx",
                condition=Q(status__in=["scheduled", "running", "paused"]),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(template="") | ~Q(journey_id=""), name="broadcast_sends_something"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def audience_label(self) -> str:
        if self.segment_id:
            return f"segment {self.segment_id}"
        if not self.filter:
            return "every contact"
        return " and ".join(
            f"{c['property']} {c['operator']}" + (f" {c['value']!r}" if "value" in c else "")
            for c in self.filter
        )


class BroadcastRecipient(models.Model):
    """One contact of a broadcast's audience and what became of its send.

    pending (due at `due_at`, or at once) → claimed (a worker took it in a batch) → done (`outcome` copies the email log's status
    when the worker was done with it; `reason` its status reason). A claim older than the claim
    timeout belonged to a worker that died: it goes back to pending, and the send's idempotency key
    (`broadcast:<id>:<contact id>`) makes the retry return the first email rather than a second.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed by a worker"
        DONE = "done", "Done"

    id = models.BigAutoField(primary_key=True)
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # sent, suppressed, skipped, failed, queued (held or retrying), unknown, cancelled, enrolled
    outcome = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)
    email = models.ForeignKey(
        "emails.EmailLog", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # When it may be sent: null for at once, else its local time in its own zone (local-time broadcasts).
    due_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "contact"], name="broadcast_recipient_once")
        ]
        indexes = [
            # The workers' claim: a broadcast's recipients still to send, by due moment (null: at
            # once, last among equals never matters) then insertion order.
            models.Index(
                fields=["broadcast", "due_at", "id"],
                name="broadcast_due_idx",
                condition=Q(state__in=["pending", "claimed"]),
            ),
            models.Index(fields=["broadcast", "outcome"], name="broadcast_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.broadcast_id} → {self.contact_id} ({self.state})"
