"""Part 3: deploy timing from empty hosts.

Destroy the bench sandbox, create it, time a full ``playbooks/site.yml`` and
its no-op re-run (``changed=0`` on every host is asserted), both with the
``ansible.posix.profile_tasks`` callback for their ten slowest tasks. Then the
no-op re-run under controller variants, each against the same converged hosts:
pipelining off, forks 1, ``gathering = smart`` + jsonfile fact cache (one
warm-up run first); the baseline no-op run is repeated at the end and the
ratios use the mean of the two baselines.
"""

import os
import shutil
import time

import common

PROFILE = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "30"}
VARIANTS = os.environ.get("BENCH_DEPLOY_VARIANTS", "1") not in ("0", "", "no", "false")


def site(name, **env):
    run = common.playbook(name, "playbooks/site.yml", env=common.ansible_env(**{**PROFILE, **env}))
    common.require(run, f"site.yml ({name})")
    recap = run.recap()
    changed = {h: r["changed"] for h, r in recap.items()}
    common.log(f"{name}: {run.seconds} s, changed {changed}")
    return run, recap


def noop(name, **env):
    run, recap = site(name, **env)
    changed = {h: r["changed"] for h, r in recap.items() if r["changed"]}
    if changed or not recap:
        raise RuntimeError(f"no-op re-run {name} changed something: {changed} (log {run.log_path})")
    return {"seconds": run.seconds, "slowest_tasks": run.profile(10), "recap": recap}


def run():
    started = time.time()
    data = {"machine": common.machine()}
    common.log(f"destroying the bench sandbox {common.PREFIX} (start from empty hosts)")
    common.require(common.playbook("deploy-destroy", "playbooks/sandbox_destroy.yml"), "sandbox_destroy.yml")
    create = common.require(common.playbook("deploy-create", "playbooks/sandbox_create.yml"), "sandbox_create.yml")
    data["create_seconds"] = create.seconds
    full, recap = site("deploy-full")
    data["full"] = {"seconds": full.seconds, "slowest_tasks": full.profile(10), "recap": recap}
    data["noop"] = noop("deploy-noop")
    common.write_json("deploy", data)
    if VARIANTS:
        variants = {}
        variants["pipelining off"] = noop("deploy-noop-pipelining-off", ANSIBLE_PIPELINING="False")
        variants["forks 1"] = noop("deploy-noop-forks-1", ANSIBLE_FORKS="1")
        cache_dir = common.SCRATCH / "facts"
        shutil.rmtree(cache_dir, ignore_errors=True)
        fact_cache = {"ANSIBLE_GATHERING": "smart", "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
                      "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache_dir), "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400"}
        noop("deploy-noop-factcache-warm", **fact_cache)
        variants["smart gathering + jsonfile fact cache (warm)"] = noop("deploy-noop-factcache", **fact_cache)
        shutil.rmtree(cache_dir, ignore_errors=True)
        variants["baseline again"] = noop("deploy-noop-again")
        base = (data["noop"]["seconds"] + variants["baseline again"]["seconds"]) / 2
        data["noop_baseline_mean_seconds"] = round(base, 2)
        data["variants"] = {k: {"seconds": v["seconds"], "slowest_tasks": v["slowest_tasks"]}
                            for k, v in variants.items()}
        # > 1 means the variant is slower than ansible.cfg's settings (pipelining on, forks 10, no cache)
        data["ratios_to_baseline"] = {k: round(v["seconds"] / base, 3) for k, v in variants.items()
                                      if k != "baseline again"}
    data["seconds"] = round(time.time() - started, 1)
    common.write_json("deploy", data)
    return data
