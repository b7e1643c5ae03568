"""The moderation migrations, data migration included, forward and backward."""

from io import StringIO

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase

APP = "moderation"
BEFORE_DATA = (APP, "0002_report_severity")
AFTER_DATA = (APP, "0003_backfill_severity")


class ModerationMigrationTests(TransactionTestCase):
    def migrate(self, *targets):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(list(targets))
        return MigrationExecutor(connection).loader.project_state(list(targets)).apps

    def tearDown(self):
        call_command("migrate", verbosity=0)

    def test_data_migration_forward_and_reverse(self):
        apps = self.migrate(BEFORE_DATA)
        report = apps.get_model(APP, "Report")
        report.objects.create(title="URGENT: spam wave", status="open")
        report.objects.create(title="old thread", status="closed")
        report.objects.create(title="typo", status="open")
        self.assertEqual(set(report.objects.values_list("severity", flat=True)), {"normal"})

        apps = self.migrate(AFTER_DATA)
        report = apps.get_model(APP, "Report")
        self.assertEqual(
            dict(report.objects.values_list("title", "severity")),
            {"URGENT: spam wave": "high", "old thread": "low", "typo": "normal"},
        )

        apps = self.migrate(BEFORE_DATA)
        report = apps.get_model(APP, "Report")
        self.assertEqual(report.objects.count(), 3)
        self.assertEqual(set(report.objects.values_list("severity", flat=True)), {"normal"})

    def test_migrate_to_zero_and_back(self):
        call_command("migrate", APP, "zero", verbosity=0)
        self.assertNotIn("moderation_report", connection.introspection.table_names())
        call_command("migrate", APP, verbosity=0)
        self.assertIn("moderation_report", connection.introspection.table_names())

    def test_no_missing_migrations(self):
        out = StringIO()
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
