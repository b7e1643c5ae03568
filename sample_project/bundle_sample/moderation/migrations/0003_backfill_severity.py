"""Data migration: derive severity from existing reports, reversibly.

Forward: reports whose title mentions "urgent" become ``high``; closed reports
become ``low``. Reverse: every report goes back to the column default
``normal`` (the state right after 0002), so ``migrate moderation 0002`` and
``migrate moderation zero`` work.
"""

from django.db import migrations
from django.db.models import Q


def backfill_severity(apps, schema_editor):
    report = apps.get_model("moderation", "Report")
    reports = report.objects.using(schema_editor.connection.alias)
    reports.filter(title__icontains="urgent").update(severity="high")
    reports.filter(Q(status="closed") & ~Q(title__icontains="urgent")).update(severity="low")


def reset_severity(apps, schema_editor):
    report = apps.get_model("moderation", "Report")
    report.objects.using(schema_editor.connection.alias).exclude(severity="normal").update(severity="normal")


class Migration(migrations.Migration):
    dependencies = [("moderation", "0002_report_severity")]

    operations = [
        migrations.RunPython(backfill_severity, reverse_code=reset_severity, elidable=False),
    ]
