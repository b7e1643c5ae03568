"""after_deploy as a plain string."""

from django.db import migrations


class Migration(migrations.Migration):
    safe = "after_deploy"
    dependencies = [("migapp", "0001_initial")]
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
