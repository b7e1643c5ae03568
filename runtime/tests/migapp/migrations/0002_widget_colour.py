"""Marked before_deploy, django-safemigrate >= 5 style (``Safe(when=When.BEFORE_DEPLOY)``)."""

from django.db import migrations, models

from tests.migapp.safe import Safe, When


class Migration(migrations.Migration):
    safe = Safe(when=When.BEFORE_DEPLOY)
    dependencies = [("migapp", "0001_initial")]
    operations = [migrations.AddField("widget", "colour", models.CharField(max_length=20, null=True))]
