from __future__ import annotations

import uuid

from django.db import models

from contacts.models import Contact


class EmailLog(models.Model):
    """Every email we tried to send, and what became of it."""

    class Status(models.TextChoices):
        # Waiting for `held_until` (the recipient's quiet hours, or the next free slot of a
        # frequency cap); then queued and delivered (emails.policy).
        HELD = "held", "Held"
        QUEUED = "queued", "Queued"
        # Claimed for the provider call. A row left here by a crash is settled by the sweep.
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed"
        # Not sent and never will be, for a reason that is no one's consent (no address to send to).
        SKIPPED = "skipped", "Skipped"
        # The process stopped during the provider call and the category forbids sending twice.
        UNKNOWN = "unknown", "Outcome unknown"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    to_email = models.EmailField(max_length=320)
    # No index of its own: email_contact_idx leads with it.
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails", db_index=False
    )
    run = models.ForeignKey(
        "journeys.JourneyRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    template = models.CharField(max_length=200)
    subject = models.CharField(max_length=500)
    category = models.CharField(max_length=64)
    props = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    status_reason = models.TextField(blank=True)
    # When a held send goes out (the send-time policy); it counts toward frequency caps at that moment.
    held_until = models.DateTimeField(null=True, blank=True)
    # The sender's priority under frequency caps: a higher one takes the slot of a lower held one.
    priority = models.SmallIntegerField(default=0, db_default=0)
    # What a frequency cap does to this send: "defer" (hold it to the next free slot) or "skip".
    on_cap = models.CharField(max_length=8, default="skip", db_default="skip")
    idempotency_key = models.CharField(max_length=255, unique=True)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    # Operator mail (skip_preference_check): consent is not re-checked when a retry delivers it.
    operator_mail = models.BooleanField(default=False)
    provider = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The http(s) links of the HTML body, in order; click tracking redirects only to these.
    links = models.JSONField(default=list, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    click_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["to_email", "template", "-created_at"], name="email_to_template_idx"),
            models.Index(fields=["contact", "-created_at"], name="email_contact_idx"),
            models.Index(fields=["status", "-created_at"], name="email_status_idx"),
            models.Index(fields=["-created_at"], name="email_created_idx"),
            # The sweep's scan of held sends whose moment has come.
            models.Index(fields=["held_until"], name="email_held_idx", condition=models.Q(status="held")),
            # The sweep's scan: only rows still waiting for (or caught in) a provider call.
            models.Index(
                fields=["updated_at"],
                name="email_pending_idx",
                condition=models.Q(status__in=["queued", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.to_email} ({self.status})"


class ProcessedWebhook(models.Model):
    """One provider webhook event we acted on. The unique id makes a redelivery a no-op.

    Permanent bounces are also counted here, per address, toward the suppression threshold.
    """

    class Kind(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        PERMANENT_BOUNCE = "permanent_bounce", "Permanent bounce"
        TRANSIENT_BOUNCE = "transient_bounce", "Transient bounce"
        COMPLAINT = "complaint", "Complaint"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        OTHER = "other", "Other"

    event_id = models.CharField(max_length=255, unique=True)
    esp = models.CharField(max_length=32)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    recipient = models.EmailField(max_length=320, blank=True, db_index=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    email = models.ForeignKey(EmailLog, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.esp} {self.kind} {self.recipient}"


class SentMessage(models.Model):
    """The message exactly as it was handed to the provider (the last attempt's), so the Studio
    shows what the recipient got: subject, headers, the HTML with its tracked links, the text part.
    Re-rendering could not: templates change, and the signed links carry the moment they were made.
    A confirmation link is the one thing not kept (the log never holds a working one)."""

    email = models.OneToOneField(
        EmailLog, on_delete=models.CASCADE, primary_key=True, related_name="sent_message"
    )
    from_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=500)
    headers = models.JSONField(default=dict)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    recorded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.email_id}: {self.subject}"
