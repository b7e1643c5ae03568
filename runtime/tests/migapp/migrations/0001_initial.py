"""Unmarked: bundle default is "before". Prints to stdout (must end on stderr)."""

from django.db import migrations, models


def say_hello(apps, schema_editor):
    print("hello from migapp.0001_initial")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Widget",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=50)),
            ],
        ),
        migrations.RunPython(say_hello, migrations.RunPython.noop),
    ]
