from django.db import migrations, models


class Migration(migrations.Migration):
    """The journey map's edge counters on a row per writing connection's shard (summed on read), so
    concurrent starts of one journey do not all update the same rows."""

    dependencies = [("journeys", "0009_run_control_group")]

    operations = [
        migrations.AddField(
            model_name="journeymapedge",
            name="shard",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.RemoveConstraint(model_name="journeymapedge", name="journeymapedge_unique"),
        migrations.AddConstraint(
            model_name="journeymapedge",
            constraint=models.UniqueConstraint(
                fields=("journey_id", "source", "target", "shard"), name="journeymapedge_unique_shard"
            ),
        ),
    ]
