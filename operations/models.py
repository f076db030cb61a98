"""Alert incidents: one row per time a rule crossed its threshold, kept after it resolves."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Alert(models.Model):
    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.CharField(max_length=64)
    # What the incident is about within its rule: "" for global rules, a journey or destination id.
    subject = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.FIRING)
    summary = models.TextField()
    value = models.FloatField()
    threshold = models.FloatField()
    fired_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The latest measurement while firing (the value that fired stays in `value`).
    last_value = models.FloatField(null=True, blank=True)
    notified = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-fired_at"]
        constraints = [
            # Fires once per incident, even if two beat runs evaluate at once.
            models.UniqueConstraint(
                fields=["rule", "subject"], condition=Q(status="firing"), name="alert_one_firing_per_rule"
            ),
        ]
        indexes = [models.Index(fields=["status", "-fired_at"], name="alert_status_idx")]

    def __str__(self) -> str:
        what = f"{self.rule}:{self.subject}" if self.subject else self.rule
        return f"{what} ({self.status})"
