from django.db import migrations, models


def control_group_backfill(apps, schema_editor):
    """Runs recorded before enrollment decided it: a run whose send was skipped as
    `control_group` was in the group; a live run not held out is in it if its contact is now
    (its next marketing send is skipped, as it was before)."""
    from emails.control_group import in_control_group

    JourneyRun = apps.get_model("journeys", "JourneyRun")
    EmailLog = apps.get_model("emails", "EmailLog")
    skipped = EmailLog.objects.filter(status="skipped", status_reason="control_group", run_id__isnull=False)
    JourneyRun.objects.filter(held_out=False, pk__in=skipped.values("run_id")).update(control_group=True)
    live = JourneyRun.objects.filter(held_out=False, control_group=False, status__in=["active", "waiting"])
    chosen = [
        pk
        for pk, contact_id in live.values_list("pk", "contact_id").iterator(chunk_size=5000)
        if in_control_group(contact_id=contact_id)
    ]
    for start in range(0, len(chosen), 5000):
        JourneyRun.objects.filter(pk__in=chosen[start : start + 5000]).update(control_group=True)


class Migration(migrations.Migration):
    dependencies = [
        ("emails", "0005_held_sends_and_send_policy"),
        ("journeys", "0008_start_path_redundant_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="journeyrun",
            name="control_group",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunPython(control_group_backfill, migrations.RunPython.noop),
    ]
