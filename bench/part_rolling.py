"""Part 4: timeline of a rolling deploy under load.

Logged-in users (loadgen.Load: HTTP workers on /whoami, WebSocket clients on
/ws/whoami/) keep the site busy while ``playbooks/rolling_migrate.yml`` deploys
release fixture r2 (molecule/default/tests/releases.py). Every line of the
playbook's output is timestamped as it streams, so the play starts (``PLAY
[...]``) and the per-host drain/restart/enable tasks can be drawn on the
latency timeline (bench/plot.py). Leaves the bench sandbox on r2.
"""

import os
import time

import common
import loadgen
from releases import build_release

USERS = int(os.environ.get("BENCH_ROLLING_USERS", "20"))
PASSWORD = "bench-Rolling-53"
SETTLE = 5
SWITCH_TASKS = {"Stop new WebSocket connections": "drain", "Restart the application": "restart",
                "Enable the server and wait": "enable"}


def run():
    common.ensure_site()
    source = build_release("r2", common.SCRATCH)
    names = loadgen.create_users("benchroll", USERS, password=PASSWORD, sandbox_prefix=common.PREFIX)
    sessions = loadgen.login_all(common.LB_URL, names, PASSWORD)
    common.log(f"{len(sessions)} users logged in; rolling_migrate.yml to r2 under load")
    with loadgen.Load(common.LB_URL, sessions, http_workers=8, ws_clients=USERS, http_pause=0.05) as load:
        time.sleep(SETTLE)
        proc = common.playbook("rolling-r2", "playbooks/rolling_migrate.yml", "-e",
                               f"django_project_source={source}")
        time.sleep(SETTLE)
    stats = load.stats()
    base = load.started

    def rel(t):
        return round(t - base, 2)

    data = {
        "machine": common.machine(),
        "method": {"users": USERS, "http_workers": 8, "http_pause_s": 0.05, "ws_clients": USERS,
                   "settle_s": SETTLE, "release": "r2 (molecule/default/tests/releases.py)"},
        "playbook": {"rc": proc.rc, "seconds": proc.seconds, "start": rel(proc.started),
                     "end": rel(proc.started + proc.seconds), "recap": proc.recap()},
        "plays": [{"t": rel(t), "name": name} for t, name in proc.plays()],
        "switches": [{"t": rel(t), "kind": kind, "host": host} for t, kind, host in proc.task_events(SWITCH_TASKS)],
        "stats": {k: v for k, v in stats.items() if k != "examples"},
        "examples": stats.get("examples", [])[:10],
        "timeline": [list(s) for s in load.timeline],  # (s since load start, http|ws, latency s, ok)
    }
    common.write_json("rolling", data, indent=None)
    common.require(proc, "rolling_migrate.yml")
    common.log(f"rolling: {proc.seconds} s, {stats['requests']} requests, {stats['failures']} failures, "
               f"{stats['logouts']} logouts, p95 {stats['http_latency_p95_s']} s")
    return data
