"""Index for the moderation queue (open reports by severity)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("moderation", "0003_backfill_severity")]

    operations = [
        migrations.AddIndex(
            model_name="report",
            index=models.Index(fields=["status", "severity"], name="moderation_status_sev_idx"),
        ),
    ]
