"""Unmarked (before)."""

from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
