"""Indexes the Studio run list needs at 100k+ runs.

Plain SQL so the model state stays untouched (journeys/models.py belongs to the engine code);
the lead may later move them into Meta.indexes with SeparateDatabaseAndState.
"""

from django.db import migrations

INDEXES = [
    # The unfiltered runs list: ORDER BY entered_at DESC LIMIT n.
    ("studio_run_entered_idx", "journeys_journeyrun (entered_at DESC)"),
    # Runs of one journey, newest first (the journey filter; the funnel's recent-runs sample).
    ("studio_run_journey_entered_idx", "journeys_journeyrun (journey_id, entered_at DESC)"),
    # The "waiting until" filter: only waiting runs carry a deadline.
    ("studio_run_waiting_until_idx", "journeys_journeyrun (waiting_until) WHERE status = 'waiting'"),
    # The per-journey daily chart of completions and exits.
    ("studio_run_journey_ended_idx", "journeys_journeyrun (journey_id, ended_at) WHERE ended_at IS NOT NULL"),
    # The enrollment-skip list, newest first.
    ("studio_skip_created_idx", "journeys_enrollmentskip (created_at DESC)"),
]


class Migration(migrations.Migration):
    dependencies = [("journeys", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {target}",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, target in INDEXES
    ]
