"""Marked after_deploy, older django-safemigrate style (an enum member)."""

from django.db import migrations

from tests.migapp.safe import LegacySafe


class Migration(migrations.Migration):
    safe = LegacySafe.after_deploy
    dependencies = [("migapp", "0002_widget_colour")]
    operations = [migrations.RemoveField("widget", "name")]
