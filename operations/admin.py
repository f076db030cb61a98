"""Studio: alert history (read-only) and the operations charts page."""

from __future__ import annotations

from django.contrib import admin

from contacts.admin_base import ReadOnlyStudioAdmin
from operations.models import Alert


@admin.register(Alert)
class AlertAdmin(ReadOnlyStudioAdmin):
    list_display = ("rule", "subject", "status", "summary", "fired_at", "resolved_at")
    list_filter = ("status", "rule")
    date_hierarchy = "fired_at"
    readonly_fields = [f.name for f in Alert._meta.fields]
