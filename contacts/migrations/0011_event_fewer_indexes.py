"""Two of the event table's indexes go: the contact's own (the two indexes that lead with the
contact serve every lookup by it) and the idempotency key's pattern index (keys are looked up
whole). The key stays unique through a constraint, added before the old one is dropped, so ingest's
ON CONFLICT (idempotency_key) finds a unique index at every moment."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0010_consent_orphan_email_index"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(fields=("idempotency_key",), name="event_idempotency_key_uniq"),
        ),
        migrations.AlterField(
            model_name="event",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AlterField(
            model_name="event",
            name="contact",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="contacts.contact",
            ),
        ),
    ]
