#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Host-side module of roles/django_app: migration plan and phased migrate."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_migrations
short_description: Plan or apply the migrations of one release in deploy phases
description:
  - Runs C(bundle_migrations) (a management command of the bundle runtime, installed in
    every release) through the management wrapper, with the code of I(release).
  - C(action=plan) changes nothing and returns the plan split into the C(before) (expand)
    and C(after) (contract) phases, the session-impacting steps and blocking errors.
  - C(action=apply) applies one phase; C(changed) is true only when migrations were
    applied or unapplied. In check mode it only plans and reports what would change.
  - Lock and statement timeouts reach PostgreSQL through C(PGOPTIONS).
options:
  manage: {description: Path of the management wrapper., type: path, required: true}
  release: {description: Release id whose code computes and applies the plan., type: str, required: true}
  action: {description: What to do., type: str, choices: [plan, apply], default: plan}
  phase: {description: Phase applied by C(action=apply)., type: str, choices: [before, after, targets], default: before}
  targets: {description: Explicit targets (C(app_label migration_name), C(zero) allowed)., type: list, elements: str, default: []}
  protect: {description: Apps whose tables hold the logins (session guard)., type: list, elements: str, default: [contenttypes, auth, sessions]}
  allow_session_impacting: {description: Apply steps that unapply or alter protected apps., type: bool, default: false}
  lock_timeout: {description: PostgreSQL lock_timeout of the migration connection ("" for none)., type: str, default: ""}
  statement_timeout: {description: PostgreSQL statement_timeout of the migration connection ("" for none)., type: str, default: ""}
author: django-deploy-bundle
"""

EXAMPLES = r"""
- name: Plan the migrations of the new release
  django_migrations:
    manage: /usr/local/bin/django-manage
    release: 1.1.0-0123456789
  register: plan

- name: Apply the migrations that are safe before the code switch
  django_migrations:
    manage: /usr/local/bin/django-manage
    release: 1.1.0-0123456789
    action: apply
    phase: before
    lock_timeout: 5s
"""

RETURN = r"""
plan: {description: The plan (steps, before, after, session_impacting, errors)., type: dict, returned: always}
applied: {description: Migrations applied (app.name)., type: list, returned: action=apply}
unapplied: {description: Migrations unapplied (app.name)., type: list, returned: action=apply}
"""

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule

TARGET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*( [A-Za-z0-9_]+)?$")


def _run(module, args):
    params = module.params
    env = {"DJANGO_MANAGE_RELEASE": params["release"]}
    options = []
    if params["lock_timeout"]:
        options.append("-c lock_timeout=%s" % params["lock_timeout"])
    if params["statement_timeout"]:
        options.append("-c statement_timeout=%s" % params["statement_timeout"])
    if options:
        env["PGOPTIONS"] = " ".join(options)
    argv = [params["manage"], "bundle_migrations"] + args
    for target in params["targets"]:
        argv += ["--target", target]
    for app in params["protect"]:
        argv += ["--protect", app]
    rc, out, err = module.run_command(argv, environ_update=env)
    if rc != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else "no error output"
        module.fail_json(msg="bundle_migrations %s failed: %s" % (args[0], reason), rc=rc,
                         stderr=err[-8000:], stdout=out[-2000:])
    try:
        return json.loads(out), err
    except ValueError:
        module.fail_json(msg="bundle_migrations %s printed no JSON" % args[0], stdout=out[-2000:], stderr=err[-4000:])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manage=dict(type="path", required=True),
            release=dict(type="str", required=True),
            action=dict(type="str", choices=["plan", "apply"], default="plan"),
            phase=dict(type="str", choices=["before", "after", "targets"], default="before"),
            targets=dict(type="list", elements="str", default=[]),
            protect=dict(type="list", elements="str", default=["contenttypes", "auth", "sessions"]),
            allow_session_impacting=dict(type="bool", default=False),
            lock_timeout=dict(type="str", default=""),
            statement_timeout=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    bad = [t for t in params["targets"] if not TARGET_RE.match(t.strip())]
    if bad:
        module.fail_json(msg="invalid migration target(s) %s: use 'app_label migration_name' or 'app_label zero'"
                         % ", ".join(repr(t) for t in bad))
    params["targets"] = [t.strip() for t in params["targets"]]
    if params["action"] == "apply" and params["phase"] == "targets" and not params["targets"]:
        module.fail_json(msg="phase=targets needs at least one target")
    if not os.path.exists(params["manage"]):
        module.fail_json(msg="management wrapper %s is missing: install the release first" % params["manage"])

    plan, _ = _run(module, ["plan"])
    if params["action"] == "plan":
        module.exit_json(changed=False, plan=plan)

    if params["phase"] == "before":
        pending = plan.get("before", [])
    elif params["phase"] == "after":
        pending = plan.get("before", []) + plan.get("after", [])
    else:
        pending = ["%s.%s" % (s["app"], s["name"]) for s in plan.get("steps", [])]
    if module.check_mode:
        module.exit_json(changed=bool(pending), plan=plan, applied=[], unapplied=[], pending=pending)

    args = ["apply", "--phase", params["phase"]]
    if params["allow_session_impacting"]:
        args.append("--allow-session-impacting")
    result, log = _run(module, args)
    applied = result.get("applied", [])
    unapplied = result.get("unapplied", [])
    module.exit_json(changed=bool(applied or unapplied), plan=plan, applied=applied, unapplied=unapplied,
                     log=log[-6000:])


if __name__ == "__main__":
    main()
