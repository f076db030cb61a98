from __future__ import annotations

from django.db import models

from contacts.models import Contact


class SegmentMembership(models.Model):
    """A contact in a segment, since `entered_at`. Segments are code; the id names one.

    The unique pair is what makes entering and leaving exactly-once: an INSERT … ON CONFLICT DO
    NOTHING and a DELETE … RETURNING report only the rows they really changed.
    """

    segment_id = models.CharField(max_length=100)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="segment_memberships")
    entered_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment_id", "contact"], name="segment_member_once"),
        ]
        indexes = [
            # Members newest first, and the keyset cursor of the members API.
            models.Index(fields=["segment_id", "-entered_at", "-contact"], name="segment_member_page_idx"),
            models.Index(fields=["contact"], name="segment_member_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class SegmentSize(models.Model):
    """A segment's size at an hour, written by the scheduled refresh: the Studio's chart."""

    segment_id = models.CharField(max_length=100)
    taken_at = models.DateTimeField()
    size = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment_id", "taken_at"], name="segment_size_once_per_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.size} at {self.taken_at:%Y-%m-%d %H:00}"


class SegmentState(models.Model):
    """What the refresh knows of a segment: when it was first populated (that first population
    announces no one: a new segment's existing members did not just enter it) and last refreshed."""

    segment_id = models.CharField(max_length=100, primary_key=True)
    populated_at = models.DateTimeField()
    refreshed_at = models.DateTimeField()
    size = models.PositiveIntegerField(default=0)
    # The compiled condition at the last refresh: a changed definition shows in the Studio.
    definition = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.segment_id} ({self.size})"
