"""``manage.py bundle_migrations plan|apply``: session-safe, deploy-phased migrations.

Ansible runs it on one app host and parses the JSON printed on stdout;
everything else (the inner ``migrate`` output, warnings, logs, ``print()``
calls inside migrations) goes to stderr.

* ``plan`` prints the plan (see :mod:`bundle_runtime.migration_plan`).
* ``apply --phase before`` applies the "before" set, ``--phase after`` all
  remaining migrations, ``--phase targets --target "app name"`` migrates to the
  explicit targets (backwards included). It prints
  ``{"phase", "database", "applied", "unapplied"}`` from the recorder's
  applied set before/after, so "changed" can be reported honestly.
"""

import json
import sys
from contextlib import redirect_stdout

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from bundle_runtime.migration_plan import (
    CONTRIB_FIRST,
    DEFAULT_PROTECTED,
    PHASE_AFTER,
    PHASE_BEFORE,
    PHASE_TARGETS,
    PHASES,
    PlanError,
    build_plan,
    label,
)


class Command(BaseCommand):
    help = "Plan or apply migrations by deploy phase (JSON on stdout)."
    requires_system_checks = []  # plan must work on any project state; apply runs the checks itself

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        plan = sub.add_parser("plan", help="Print the phased migration plan as JSON.")
        apply = sub.add_parser("apply", help="Apply one phase of the plan; print what changed as JSON.")
        for each in (plan, apply):
            each.add_argument(
                "--target",
                action="append",
                default=[],
                dest="targets",
                metavar="'APP_LABEL MIGRATION_NAME'",
                help="Explicit target like `migrate APP NAME` (NAME may be `zero` or a prefix). Repeatable.",
            )
            each.add_argument(
                "--protect",
                action="append",
                default=None,
                dest="protect",
                metavar="APP_LABEL",
                help="Session-protected app (repeatable; replaces the default %s)." % ", ".join(DEFAULT_PROTECTED),
            )
            each.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")
        apply.add_argument("--phase", required=True, choices=PHASES, help="Which part of the plan to apply.")
        apply.add_argument(
            "--allow-session-impacting",
            action="store_true",
            help="Apply even when the steps alter or unapply session-protected apps.",
        )

    def handle(self, *args, **options):
        database = options["database"]
        if database not in connections:
            raise CommandError(f"Unknown database alias {database!r}.")
        # Nothing but our JSON may reach stdout: self.stdout keeps the real
        # stream, anything else printing to sys.stdout is sent to stderr.
        with redirect_stdout(sys.stderr):
            if options["action"] == "plan":
                result = self.build(options).as_dict()
            else:
                result = self.apply(options)
        self.stdout.write(json.dumps(result))

    def build(self, options):
        """The :class:`~bundle_runtime.migration_plan.BundlePlan` for the options."""
        connection = connections[options["database"]]
        protected = options["protect"] if options["protect"] is not None else DEFAULT_PROTECTED
        try:
            return build_plan(MigrationExecutor(connection), options["targets"], protected, options["database"])
        except PlanError as error:
            raise CommandError(str(error)) from None

    def apply(self, options):
        """Run one phase; return ``{"phase", "database", "applied", "unapplied"}``."""
        phase, database = options["phase"], options["database"]
        if phase == PHASE_TARGETS and not options["targets"]:
            raise CommandError("--phase targets requires at least one --target.")
        if phase != PHASE_TARGETS and options["targets"]:
            raise CommandError("--target is only valid with --phase targets.")
        plan = self.build(options)
        if plan.errors:
            raise CommandError("Refusing to apply, the plan has errors: " + "; ".join(plan.errors))
        impacting = plan.session_impacting(plan.steps_for_phase(phase))
        if impacting and not options["allow_session_impacting"]:
            raise CommandError(
                "Refusing to apply session-impacting steps without --allow-session-impacting: "
                + "; ".join(f"{entry['migration']} ({entry['reason']})" for entry in impacting)
            )
        if not options.get("skip_checks"):
            self.check(databases=[database])

        connection = connections[database]
        recorder = MigrationRecorder(connection)
        before = set(recorder.applied_migrations())
        order = {step.key: index for index, step in enumerate(plan.steps)}
        error = None
        try:
            self.run_phase(plan, phase, options)
        except Exception as exc:  # report what did change, then fail
            error = exc
        after = set(MigrationRecorder(connection).applied_migrations())

        def ordered(keys):
            return [label(key) for key in sorted(keys, key=lambda k: (order.get(k, len(order)), k))]

        result = {
            "phase": phase,
            "database": database,
            "applied": ordered(after - before),
            "unapplied": ordered(before - after),
        }
        if error is not None:
            result["error"] = f"{type(error).__name__}: {error}"
            self.stdout.write(json.dumps(result))
            raise CommandError(f"Migration failed during phase {phase}: {result['error']}") from error
        return result

    def run_phase(self, plan, phase, options):
        """Call Django's ``migrate`` for the phase (signals such as post_migrate run as usual)."""
        database = options["database"]
        if phase == PHASE_TARGETS:
            for app, name in plan.targets:
                self.migrate(options, app, name or "zero")
            return
        if phase == PHASE_BEFORE:
            targets = plan.before_targets()
            contrib = sorted((t for t in targets if t[0] in CONTRIB_FIRST), key=lambda t: CONTRIB_FIRST.index(t[0]))
            for app, name in contrib + [t for t in targets if t[0] not in CONTRIB_FIRST]:
                # Skip what an earlier call already applied: migrating to an
                # applied node would unapply its children in that app.
                if (app, name) in MigrationRecorder(connections[database]).applied_migrations():
                    continue
                self.migrate(options, app, name)
            return
        assert phase == PHASE_AFTER
        for app in plan.contrib_pending:  # django_session current before any app migration
            self.migrate(options, app)
        self.migrate(options)

    def migrate(self, options, *args):
        """``migrate *args`` with all its output on stderr."""
        err = getattr(self.stderr, "_out", sys.stderr)
        if options["verbosity"]:
            self.stderr.write(f"bundle_migrations: migrate {' '.join(args) or '(all)'}")
        call_command(
            "migrate",
            *args,
            database=options["database"],
            interactive=False,
            verbosity=options["verbosity"],
            stdout=err,
            stderr=err,
            skip_checks=True,
        )
