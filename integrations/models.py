"""Inbound webhook deliveries, outbound destinations and their deliveries."""

from __future__ import annotations

import base64
import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class WebhookDelivery(models.Model):
    """One verified delivery from a webhook source, with a bounded sample of its body.

    The (source, delivery id) pair is unique for deliveries that were handled, so a provider's
    redelivery is a no-op; a failed one may be delivered again once the cause is fixed.
    Deliveries that fail verification are never stored here (see WebhookSourceState).
    """

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        IGNORED = "ignored", "Verified; nothing to ingest"
        FAILED = "failed", "Verified; could not be ingested"

    source_id = models.CharField(max_length=64)
    delivery_id = models.CharField(max_length=255)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    event_names = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    event_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    error = models.TextField(blank=True)
    body = models.TextField(blank=True)
    body_truncated = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["source_id", "delivery_id"],
                condition=~Q(outcome="failed"),
                name="webhookdelivery_once_per_source",
            )
        ]
        indexes = [
            models.Index(fields=["source_id", "-received_at"], name="webhookdelivery_source_idx"),
            models.Index(fields=["received_at"], name="webhookdelivery_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} {self.delivery_id} ({self.outcome})"


class WebhookSourceState(models.Model):
    """Per source: refused deliveries counted, not stored (an attacker must not fill the table)."""

    source_id = models.CharField(max_length=64, primary_key=True)
    refused_count = models.PositiveBigIntegerField(default=0)
    last_refused_at = models.DateTimeField(null=True, blank=True)
    last_refused_reason = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return self.source_id


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Destination(models.Model):
    """Where lifecycle events go: a signed webhook, PostHog, Segment or a Slack channel."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (Standard Webhooks signature)"
        POSTHOG = "posthog", "PostHog (capture API)"
        SEGMENT = "segment", "Segment (track API)"
        SLACK = "slack", "Slack (incoming webhook)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(
        max_length=500,
        help_text="Webhook: your endpoint. PostHog: the host, e.g. https://us.i.posthog.com. "
        "Segment: https://api.segment.io (or your region's). Slack: the incoming-webhook URL.",
    )
    secret = models.CharField(
        max_length=255,
        blank=True,
        help_text="Webhook: the whsec_ signing secret (generated when blank). PostHog: the project "
        "API key. Segment: the source write key. Slack: unused (the URL is the secret).",
    )
    event_types = ArrayField(
        models.CharField(max_length=64),
        default=list,
        blank=True,
        help_text="Lifecycle event types to send, comma separated (a trailing .* matches a family, "
        "e.g. email.*); empty sends every type.",
    )
    paused = models.BooleanField(default=False, help_text="Paused: deliveries wait, none are lost.")
    # Destinations written from the INTEGRATIONS_DESTINATIONS setting are replaced by the next sync.
    from_settings = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def save(self, *args, **kwargs) -> None:
        if self.kind == self.Kind.WEBHOOK and not self.secret:
            self.secret = webhook_secret_new()
        super().save(*args, **kwargs)

    def wants(self, event_type: str) -> bool:
        return not self.event_types or any(
            pattern == event_type or (pattern.endswith(".*") and event_type.startswith(pattern[:-1]))
            for pattern in self.event_types
        )


class Delivery(models.Model):
    """One lifecycle event on its way to one destination. Its id is the stable delivery id the
    receiver sees on every attempt (webhook-id, PostHog uuid, Segment messageId)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(db_index=True)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker holds the delivery until then; a crashed worker's claim simply expires.
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx", condition=Q(status="pending")),
            models.Index(
                fields=["destination", "-dead_at"], name="delivery_dead_idx", condition=Q(status="dead")
            ),
            models.Index(fields=["destination", "-created_at"], name="delivery_destination_idx"),
            models.Index(
                fields=["delivered_at"], name="delivery_delivered_idx", condition=Q(status="delivered")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.destination_id} ({self.status})"
