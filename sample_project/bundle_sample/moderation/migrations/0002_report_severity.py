"""Expand: add the severity column (with a default, so old code keeps working)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="report",
            name="severity",
            field=models.CharField(
                choices=[("low", "Low"), ("normal", "Normal"), ("high", "High")], default="normal", max_length=16
            ),
        ),
    ]
