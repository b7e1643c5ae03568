"""before_deploy but depends on the after_deploy 0002: a blocking plan error."""

from django.db import migrations


class Migration(migrations.Migration):
    safe = "before_deploy"
    dependencies = [("migapp", "0002_after")]
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
