"""Deploy-phase migration planning (used by ``manage.py bundle_migrations``).

A forward migration is classified with django-safemigrate's marking
vocabulary, without requiring the package: ``migration.safe`` may be

* an object with ``.when`` (django-safemigrate >= 5: ``Safe(when=When.X)``),
* an enum member with ``.value`` (older django-safemigrate: ``Safe.after_deploy``),
* a plain string (``"after_deploy"``),
* absent.

``after_deploy`` -> phase ``"after"``; ``before_deploy``, ``always`` or
unmarked -> phase ``"before"`` (the bundle's default for unmarked migrations
is "before", unlike django-safemigrate's own). Steps of an explicit
``--target`` plan are in phase ``"targets"``.

Everything here works on a :class:`django.db.migrations.executor.MigrationExecutor`
(or its loader) and never writes to the database.
"""

from dataclasses import dataclass, field

from django.db.migrations.exceptions import AmbiguityError, InconsistentMigrationHistory

PHASE_BEFORE = "before"
PHASE_AFTER = "after"
PHASE_TARGETS = "targets"
PHASES = (PHASE_BEFORE, PHASE_AFTER, PHASE_TARGETS)

#: Apps whose tables hold (or guard) sessions: migrating them can log users out.
DEFAULT_PROTECTED = ("contenttypes", "auth", "sessions")
#: Migrated first, in this order, by ``apply --phase before|after``.
CONTRIB_FIRST = ("contenttypes", "auth", "sessions")

AFTER_DEPLOY = "after_deploy"


class PlanError(Exception):
    """A target or option that cannot be resolved (the command turns it into a CommandError)."""


def migration_marking(migration):
    """Return the safemigrate marking of ``migration`` as a lower-case string, or None.

    ``"always"``, ``"before_deploy"``, ``"after_deploy"`` (or any other string
    a project used); None when the migration is unmarked.
    """
    safe = getattr(migration, "safe", None)
    if safe is None:
        return None
    when = getattr(safe, "when", safe)  # safemigrate >= 5: Safe(when=When.X, delay=...)
    value = getattr(when, "value", when)  # enum member (When.X or the old Safe.X)
    if value is None:
        return None
    return str(value).strip().lower()


def classify(migration):
    """Deploy phase of a forward migration: ``"after"`` for after_deploy, else ``"before"``."""
    return PHASE_AFTER if migration_marking(migration) == AFTER_DEPLOY else PHASE_BEFORE


def label(key):
    """``("app", "0001_x")`` -> ``"app.0001_x"``; ``("app", None)`` -> ``"app.zero"``."""
    return f"{key[0]}.{key[1] if key[1] is not None else 'zero'}"


def parse_target(text):
    """Split ``"app_label migration_name"`` (or ``"app_label"``) into a tuple.

    The migration name is None when only the app label is given (migrate the
    app to its latest migration, like ``manage.py migrate app_label``).
    """
    parts = text.split()
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return parts[0], parts[1]
    raise PlanError(f"--target must be 'app_label migration_name', got {text!r}")


def resolve_target(loader, app_label, migration_name):
    """Resolve one target the way ``manage.py migrate app_label migration_name`` does.

    Returns a list of graph keys: ``[(app, None)]`` for ``zero``, the app's
    leaf nodes when no name is given, else ``[(app, full_name)]`` (a name
    prefix is accepted). Raises :class:`PlanError` for unknown apps or
    migrations and for ambiguous prefixes.
    """
    from django.apps import apps

    try:
        apps.get_app_config(app_label)
    except LookupError as error:
        raise PlanError(f"Unknown app label {app_label!r} in --target: {error}") from None
    if app_label not in loader.migrated_apps:
        raise PlanError(f"App {app_label!r} does not have migrations.")
    if migration_name is None:
        return [key for key in loader.graph.leaf_nodes() if key[0] == app_label]
    if migration_name == "zero":
        return [(app_label, None)]
    try:
        migration = loader.get_migration_by_prefix(app_label, migration_name)
    except AmbiguityError:
        raise PlanError(
            f"More than one migration matches {migration_name!r} in app {app_label!r}. Please be more specific."
        ) from None
    except KeyError:
        raise PlanError(f"Cannot find a migration matching {migration_name!r} from app {app_label!r}.") from None
    target = (app_label, migration.name)
    # Partially applied squashed migrations are not in the graph: use the
    # last replaced migration instead (as Django's migrate does).
    if target not in loader.graph.nodes and target in loader.replacements:
        target = loader.replacements[target].replaces[-1]
    return [target]


def resolve_targets(loader, texts):
    """Resolve every ``--target`` string; returns a list of graph keys (duplicates dropped)."""
    targets = []
    for text in texts or ():
        for key in resolve_target(loader, *parse_target(text)):
            if key not in targets:
                targets.append(key)
    return targets


@dataclass
class Step:
    """One step of a migration plan."""

    app: str
    name: str
    backwards: bool
    phase: str
    protected: bool
    marking: str | None = None

    @property
    def key(self):
        return (self.app, self.name)

    def as_dict(self):
        return {
            "app": self.app,
            "name": self.name,
            "backwards": self.backwards,
            "phase": self.phase,
            "protected": self.protected,
            "marking": self.marking,
        }


def split_forward(keys, phase_of, parents_of):
    """Split a pending forward plan into (before, after, errors).

    ``keys``: the pending forward plan in order (graph keys); ``phase_of(key)``
    its classification; ``parents_of(key)``: its direct dependencies (graph
    keys). A "before" migration is kept in "before" only when none of its
    pending (transitive) dependencies is an "after" migration; otherwise it
    moves to "after" and an error is reported.
    """
    pending = set(keys)
    blockers = {}  # key -> set of pending "after" migrations it needs (itself included)
    before, after, errors = [], [], []
    for key in keys:
        needs = set()
        for parent in parents_of(key):
            if parent in pending:
                needs |= blockers.get(parent, set())
        phase = phase_of(key)
        if phase == PHASE_AFTER:
            blockers[key] = needs | {key}
            after.append(key)
            continue
        blockers[key] = needs
        if needs:
            after.append(key)
            errors.append(
                f"{label(key)} runs before deploy but depends on pending after-deploy migration(s) "
                + ", ".join(label(k) for k in sorted(needs))
            )
        else:
            before.append(key)
    return before, after, errors


def impact(step, applied_apps, protected):
    """Why ``step`` is session-impacting (rules a, b), or None.

    (a) a backwards step of a protected app; (b) a forward step of a protected
    app that already has applied migrations (the first creation is harmless).
    """
    if step.app not in protected:
        return None
    if step.backwards:
        return f"unapplies a migration of {step.app}"
    if step.app in applied_apps:
        return f"alters existing tables of {step.app} (it already has applied migrations)"
    return None


@dataclass
class BundlePlan:
    """Result of :func:`build_plan`; ``as_dict()`` is the JSON of ``bundle_migrations plan``."""

    database: str
    targets: list
    explicit: bool
    steps: list
    before: list
    after: list
    errors: list
    protected: tuple
    applied: set
    applied_count: int
    pending_count: int
    contrib_pending: list = field(default_factory=list)
    ancestors_of: object = None  # key -> keys it needs (graph.forwards_plan)

    @property
    def applied_apps(self):
        return {app for app, _ in self.applied}

    def steps_for_phase(self, phase):
        """The steps ``apply --phase`` would run (contrib-first migrations included)."""
        if phase == PHASE_TARGETS or self.explicit:
            return list(self.steps)
        if phase == PHASE_BEFORE:
            return [step for step in self.steps if step.phase == PHASE_BEFORE]
        return [step for step in self.steps if not step.backwards]

    def session_impacting(self, steps=None):
        """Session-impacting entries for ``steps`` (default: the whole plan), rules (a), (b), (c)."""
        steps = self.steps if steps is None else steps
        applied_apps = self.applied_apps
        found = []
        for step in steps:
            reason = impact(step, applied_apps, self.protected)
            if reason:
                found.append({"migration": label(step.key), "backwards": step.backwards, "reason": reason})
        if self.explicit:  # (c): an explicit target on a protected app, even with an empty plan
            for app, name in self.targets:
                if app in self.protected:
                    backwards = name is None or any(s.backwards and s.app == app for s in self.steps)
                    found.append(
                        {
                            "migration": label((app, name)),
                            "backwards": backwards,
                            "reason": f"explicit target on protected app {app}",
                        }
                    )
        return found

    def before_targets(self):
        """``(app, name)`` to migrate to for the before phase, in plan order.

        Per app, the migrations of the "before" set that no other "before"
        migration of the same app depends on (for a linear app: its last
        "before" migration).
        """
        before = [step.key for step in self.steps if step.phase == PHASE_BEFORE]
        return _per_app_leaves(before, self.ancestors_of or (lambda key: [key]))

    def as_dict(self):
        return {
            "database": self.database,
            "targets": [[app, name] for app, name in self.targets],
            "explicit": self.explicit,
            "steps": [step.as_dict() for step in self.steps],
            "before": [label(key) for key in self.before],
            "after": [label(key) for key in self.after],
            "session_impacting": self.session_impacting(),
            "errors": list(self.errors),
            "protected": list(self.protected),
            "applied_count": self.applied_count,
            "pending_count": self.pending_count,
        }


def _per_app_leaves(keys, ancestors_of):
    """Keys (in order) that are not an ancestor of another key of the same app in ``keys``."""
    covered = set()
    for key in keys:
        for ancestor in ancestors_of(key):
            if ancestor != key and ancestor[0] == key[0]:
                covered.add(ancestor)
    return [key for key in keys if key not in covered]


def build_plan(executor, target_texts=None, protected=DEFAULT_PROTECTED, database="default"):
    """Compute the deploy plan for ``executor`` (a ``MigrationExecutor`` on the connection).

    ``target_texts``: the ``--target`` strings (empty -> the full forward plan).
    Raises :class:`PlanError` for unresolvable targets.
    """
    loader = executor.loader
    graph = loader.graph
    protected = tuple(dict.fromkeys(protected))
    errors = []
    conflicts = loader.detect_conflicts()
    for app, names in sorted(conflicts.items()):
        errors.append(f"Conflicting migrations in {app}: {', '.join(sorted(names))} (run makemigrations --merge)")
    try:
        loader.check_consistent_history(executor.connection)
    except InconsistentMigrationHistory as error:
        errors.append(f"Inconsistent migration history: {error}")

    targets = resolve_targets(loader, target_texts)
    explicit = bool(target_texts)
    applied = set(loader.applied_migrations)
    full_plan = executor.migration_plan(graph.leaf_nodes())
    pending_count = sum(1 for _, backwards in full_plan if not backwards)

    if explicit:
        raw = executor.migration_plan(targets)
    else:
        raw = full_plan

    steps = []
    for migration, backwards in raw:
        key = (migration.app_label, migration.name)
        marking = migration_marking(migration)
        steps.append(
            Step(
                app=key[0],
                name=key[1],
                backwards=bool(backwards),
                phase=PHASE_TARGETS if explicit else classify(migration),
                protected=key[0] in protected,
                marking=marking,
            )
        )

    before, after = [], []
    if not explicit:
        by_key = {step.key: step for step in steps if not step.backwards}
        keys = list(by_key)

        def parents_of(key):
            node = graph.node_map.get(key)
            return [parent.key for parent in node.parents] if node else []

        before, after, split_errors = split_forward(keys, lambda k: by_key[k].phase, parents_of)
        errors.extend(split_errors)
        after_set = set(after)
        for key in after_set:
            by_key[key].phase = PHASE_AFTER

    contrib_pending = [
        app for app in CONTRIB_FIRST if any(not backwards and m.app_label == app for m, backwards in full_plan)
    ]
    plan = BundlePlan(
        database=database,
        targets=targets,
        explicit=explicit,
        steps=steps,
        before=before,
        after=after,
        errors=errors,
        protected=protected,
        applied=applied,
        applied_count=len(applied),
        pending_count=pending_count,
        contrib_pending=contrib_pending,
        ancestors_of=lambda key: graph.forwards_plan(key) if key in graph.nodes else [key],
    )
    return plan
