"""bundle_runtime.migration_plan and ``manage.py bundle_migrations``."""

import contextlib
import io
import json
from types import SimpleNamespace

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import SimpleTestCase, TransactionTestCase, modify_settings, override_settings

from bundle_runtime import migration_plan as mp
from tests.migapp.safe import LegacySafe, Safe, When

MIGAPP = ["migapp.0001_initial", "migapp.0002_widget_colour", "migapp.0003_remove_widget_name"]


def marked(safe=None):
    """A migration-like object, optionally with a ``safe`` attribute."""
    migration = SimpleNamespace()
    if safe is not None:
        migration.safe = safe
    return migration


class ClassificationTests(SimpleTestCase):
    def test_unmarked_is_before(self):
        self.assertIsNone(mp.migration_marking(marked()))
        self.assertEqual(mp.classify(marked()), "before")

    def test_safemigrate5_when_objects(self):
        self.assertEqual(mp.classify(marked(Safe(when=When.AFTER_DEPLOY))), "after")
        self.assertEqual(mp.classify(marked(Safe(when=When.BEFORE_DEPLOY))), "before")
        self.assertEqual(mp.classify(marked(Safe(when=When.ALWAYS, delay=3600))), "before")
        self.assertEqual(mp.migration_marking(marked(Safe(when=When.ALWAYS))), "always")
        # .when holding a plain string
        self.assertEqual(mp.classify(marked(SimpleNamespace(when="after_deploy"))), "after")

    def test_enum_members_with_value(self):
        self.assertEqual(mp.classify(marked(LegacySafe.after_deploy)), "after")
        self.assertEqual(mp.classify(marked(LegacySafe.before_deploy)), "before")
        self.assertEqual(mp.classify(marked(LegacySafe.always)), "before")

    def test_strings(self):
        self.assertEqual(mp.classify(marked("after_deploy")), "after")
        self.assertEqual(mp.classify(marked("AFTER_DEPLOY ")), "after")
        self.assertEqual(mp.classify(marked("before_deploy")), "before")
        self.assertEqual(mp.classify(marked("always")), "before")

    def test_real_django_safemigrate_if_installed(self):
        try:
            from django_safemigrate import Safe as RealSafe
        except ImportError:
            self.skipTest("django-safemigrate is not installed")
        self.assertEqual(mp.classify(marked(RealSafe.after_deploy())), "after")
        self.assertEqual(mp.classify(marked(RealSafe.before_deploy())), "before")
        self.assertEqual(mp.classify(marked(RealSafe.always())), "before")

    def test_parse_target(self):
        self.assertEqual(mp.parse_target("moderation zero"), ("moderation", "zero"))
        self.assertEqual(mp.parse_target(" moderation  0004 "), ("moderation", "0004"))
        self.assertEqual(mp.parse_target("moderation"), ("moderation", None))
        with self.assertRaises(mp.PlanError):
            mp.parse_target("a b c")


class SplitTests(SimpleTestCase):
    """split_forward on a hand-made graph."""

    def split(self, phases, parents):
        keys = list(phases)
        return mp.split_forward(keys, phases.__getitem__, lambda k: parents.get(k, []))

    def test_linear_before_then_after(self):
        phases = {("a", "1"): "before", ("a", "2"): "before", ("a", "3"): "after"}
        parents = {("a", "2"): [("a", "1")], ("a", "3"): [("a", "2")]}
        before, after, errors = self.split(phases, parents)
        self.assertEqual(before, [("a", "1"), ("a", "2")])
        self.assertEqual(after, [("a", "3")])
        self.assertEqual(errors, [])

    def test_before_depending_on_pending_after_is_an_error(self):
        # b.1 (before) -> a.2 (after) -> a.1 ; c.1 (before) -> b.1 (transitive)
        phases = {("a", "1"): "before", ("a", "2"): "after", ("b", "1"): "before", ("c", "1"): "before"}
        parents = {("a", "2"): [("a", "1")], ("b", "1"): [("a", "2")], ("c", "1"): [("b", "1")]}
        before, after, errors = self.split(phases, parents)
        self.assertEqual(before, [("a", "1")])
        self.assertEqual(after, [("a", "2"), ("b", "1"), ("c", "1")])
        self.assertEqual(len(errors), 2)
        self.assertIn("b.1", errors[0])
        self.assertIn("a.2", errors[0])
        self.assertIn("c.1", errors[1])

    def test_applied_after_dependency_does_not_block(self):
        # a.2 is already applied: not in the pending plan, so b.1 stays "before".
        phases = {("b", "1"): "before"}
        before, after, errors = self.split(phases, {("b", "1"): [("a", "2")]})
        self.assertEqual((before, after, errors), ([("b", "1")], [], []))


def run(*args):
    """Run ``bundle_migrations``; return (parsed stdout JSON, stderr text, text leaked on sys.stdout)."""
    out, err, leaked = io.StringIO(), io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(leaked), contextlib.redirect_stderr(err):
        call_command("bundle_migrations", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue(), leaked.getvalue()


def applied(app):
    return sorted(name for a, name in MigrationRecorder(connection).applied_migrations() if a == app)


@modify_settings(INSTALLED_APPS={"append": "tests.migapp"})
class BundleMigrationsCommandTests(TransactionTestCase):
    """Against the real sqlite test database; migapp starts unapplied."""

    def setUp(self):
        self.assertEqual(applied("migapp"), [])

    def tearDown(self):
        quiet = {"verbosity": 0, "stdout": io.StringIO(), "stderr": io.StringIO()}
        for app in ("contenttypes", "auth", "sessions"):
            call_command("migrate", app, **quiet)
        call_command("migrate", "migapp", "zero", **quiet)

    def test_plan_json_shape_and_split(self):
        plan, _, leaked = run("plan")
        self.assertEqual(leaked, "")
        self.assertEqual(
            set(plan),
            {
                "database", "targets", "explicit", "steps", "before", "after", "session_impacting",
                "errors", "protected", "applied_count", "pending_count",
            },
        )
        self.assertEqual(plan["database"], "default")
        self.assertEqual((plan["targets"], plan["explicit"]), ([], False))
        self.assertEqual(plan["before"], MIGAPP[:2])
        self.assertEqual(plan["after"], MIGAPP[2:])
        self.assertEqual(
            plan["steps"],
            [
                {"app": "migapp", "name": "0001_initial", "backwards": False, "phase": "before",
                 "protected": False, "marking": None},
                {"app": "migapp", "name": "0002_widget_colour", "backwards": False, "phase": "before",
                 "protected": False, "marking": "before_deploy"},
                {"app": "migapp", "name": "0003_remove_widget_name", "backwards": False, "phase": "after",
                 "protected": False, "marking": "after_deploy"},
            ],
        )
        self.assertEqual((plan["errors"], plan["session_impacting"]), ([], []))
        self.assertEqual(plan["pending_count"], 3)
        self.assertEqual(plan["applied_count"], len(MigrationRecorder(connection).applied_migrations()))
        self.assertGreater(plan["applied_count"], 10)

    @override_settings(MIGRATION_MODULES={"migapp": "tests.migapp.migrations_bad"})
    def test_before_depending_on_after_is_an_error_and_blocks_apply(self):
        plan, _, _ = run("plan")
        self.assertEqual(plan["before"], ["migapp.0001_initial"])
        self.assertEqual(plan["after"], ["migapp.0002_after", "migapp.0003_before"])
        self.assertEqual(len(plan["errors"]), 1)
        self.assertIn("migapp.0003_before", plan["errors"][0])
        self.assertIn("migapp.0002_after", plan["errors"][0])
        for phase in ("before", "after"):
            with self.assertRaisesMessage(CommandError, "plan has errors"):
                run("apply", "--phase", phase)
        self.assertEqual(applied("migapp"), [])

    def test_explicit_target_plan(self):
        run("apply", "--phase", "after")
        plan, _, _ = run("plan", "--target", "migapp 0001")
        self.assertEqual(plan["targets"], [["migapp", "0001_initial"]])
        self.assertTrue(plan["explicit"])
        self.assertEqual((plan["before"], plan["after"]), ([], []))
        self.assertEqual(
            [(s["name"], s["backwards"], s["phase"]) for s in plan["steps"]],
            [("0003_remove_widget_name", True, "targets"), ("0002_widget_colour", True, "targets")],
        )
        self.assertEqual(plan["session_impacting"], [])
        zero, _, _ = run("plan", "--target", "migapp zero")
        self.assertEqual(zero["targets"], [["migapp", None]])
        self.assertEqual(len(zero["steps"]), 3)

    def test_unknown_targets_are_command_errors(self):
        with self.assertRaisesMessage(CommandError, "Cannot find a migration matching '9999'"):
            run("plan", "--target", "migapp 9999")
        with self.assertRaisesMessage(CommandError, "Unknown app label 'nosuchapp'"):
            run("plan", "--target", "nosuchapp zero")
        with self.assertRaisesMessage(CommandError, "does not have migrations"):
            run("plan", "--target", "bundle_runtime zero")

    def test_sessions_zero_is_session_impacting(self):
        plan, _, _ = run("plan", "--target", "sessions zero")
        self.assertEqual(plan["targets"], [["sessions", None]])
        self.assertEqual(
            plan["session_impacting"],
            [
                {"migration": "sessions.0001_initial", "backwards": True,
                 "reason": "unapplies a migration of sessions"},
                {"migration": "sessions.zero", "backwards": True,
                 "reason": "explicit target on protected app sessions"},
            ],
        )
        self.assertEqual(plan["steps"][0]["protected"], True)
        with self.assertRaisesMessage(CommandError, "--allow-session-impacting"):
            run("apply", "--phase", "targets", "--target", "sessions zero")
        self.assertEqual(applied("sessions"), ["0001_initial"])

        result, stderr, _ = run("apply", "--phase", "targets", "--target", "sessions zero", "--allow-session-impacting")
        self.assertEqual(result, {"phase": "targets", "database": "default", "applied": [],
                                  "unapplied": ["sessions.0001_initial"]})
        self.assertIn("Unapplying sessions.0001_initial", stderr)
        self.assertEqual(applied("sessions"), [])

    def test_explicit_target_on_protected_app_with_empty_plan(self):
        plan, _, _ = run("plan", "--target", "sessions 0001")
        self.assertEqual(plan["steps"], [])
        self.assertEqual(
            plan["session_impacting"],
            [{"migration": "sessions.0001_initial", "backwards": False,
              "reason": "explicit target on protected app sessions"}],
        )
        with self.assertRaises(CommandError):
            run("apply", "--phase", "targets", "--target", "sessions 0001")

    def test_first_creation_is_not_impacting_and_contrib_runs_first(self):
        call_command("migrate", "sessions", "zero", verbosity=0, stdout=io.StringIO())
        plan, _, _ = run("plan")
        self.assertEqual(plan["session_impacting"], [])
        self.assertIn("sessions.0001_initial", plan["before"])
        self.assertEqual([s["protected"] for s in plan["steps"] if s["app"] == "sessions"], [True])

        result, _, _ = run("apply", "--phase", "before")
        self.assertEqual(sorted(result["applied"]), sorted(MIGAPP[:2] + ["sessions.0001_initial"]))
        # django_session was created before any app migration ran.
        rows = MigrationRecorder.Migration.objects.filter(app__in=["sessions", "migapp"]).order_by("id")
        self.assertEqual([f"{r.app}.{r.name}" for r in rows], ["sessions.0001_initial"] + MIGAPP[:2])

    def test_forward_step_of_protected_app_with_applied_migrations_is_impacting(self):
        with contextlib.redirect_stdout(io.StringIO()):  # 0001 print()s
            call_command("migrate", "migapp", "0001", verbosity=0, stdout=io.StringIO())
        plan, _, _ = run("plan", "--protect", "migapp")
        self.assertEqual(plan["protected"], ["migapp"])
        self.assertEqual(
            [(e["migration"], e["backwards"]) for e in plan["session_impacting"]],
            [("migapp.0002_widget_colour", False), ("migapp.0003_remove_widget_name", False)],
        )
        with self.assertRaisesMessage(CommandError, "migapp.0002_widget_colour"):
            run("apply", "--phase", "before", "--protect", "migapp")
        self.assertEqual(applied("migapp"), ["0001_initial"])
        result, _, _ = run("apply", "--phase", "before", "--protect", "migapp", "--allow-session-impacting")
        self.assertEqual(result["applied"], ["migapp.0002_widget_colour"])

    def test_first_creation_of_protected_app_is_not_impacting(self):
        plan, _, _ = run("plan", "--protect", "migapp")
        self.assertEqual(plan["session_impacting"], [])
        self.assertTrue(all(step["protected"] for step in plan["steps"]))

    def test_apply_before_then_after(self):
        result, stderr, leaked = run("apply", "--phase", "before")
        self.assertEqual(result, {"phase": "before", "database": "default", "applied": MIGAPP[:2], "unapplied": []})
        self.assertEqual(applied("migapp"), ["0001_initial", "0002_widget_colour"])
        # Inner migrate output and the migration's print() went to stderr, never stdout.
        self.assertIn("Applying migapp.0001_initial", stderr)
        self.assertIn("hello from migapp.0001_initial", stderr)
        self.assertEqual(leaked, "")
        with connection.cursor() as cursor:
            columns = [c.name for c in connection.introspection.get_table_description(cursor, "migapp_widget")]
        self.assertEqual(columns, ["id", "name", "colour"])

        again, _, _ = run("apply", "--phase", "before")
        self.assertEqual((again["applied"], again["unapplied"]), ([], []))

        result, _, _ = run("apply", "--phase", "after")
        self.assertEqual(result, {"phase": "after", "database": "default", "applied": MIGAPP[2:], "unapplied": []})
        again, _, _ = run("apply", "--phase", "after")
        self.assertEqual((again["applied"], again["unapplied"]), ([], []))
        plan, _, _ = run("plan")
        self.assertEqual((plan["steps"], plan["pending_count"]), ([], 0))

    def test_apply_targets(self):
        run("apply", "--phase", "after")
        result, _, _ = run("apply", "--phase", "targets", "--target", "migapp zero")
        self.assertEqual(result["unapplied"], list(reversed(MIGAPP)))
        self.assertEqual(result["applied"], [])
        self.assertEqual(applied("migapp"), [])

    def test_apply_option_errors(self):
        with self.assertRaisesMessage(CommandError, "requires at least one --target"):
            run("apply", "--phase", "targets")
        with self.assertRaisesMessage(CommandError, "only valid with --phase targets"):
            run("apply", "--phase", "before", "--target", "migapp zero")
