"""Fault matrix on the converged sandbox: what logged-in users see when a service fails.

Every fault runs while 50 logged-in users keep requesting ``/whoami`` and hold
WebSocket connections through the load balancer (loadgen.Load). A user who is
answered as anonymous (or as someone else) counts as a logout; any status
other than 200, a timeout or a refused connection counts as a failure. The
counts are printed and written to .cache/test-results/faults-<prefix>-*.json.

Also here: an unreachable host stops a deploy before anything changes; no
secret is in a world-readable file. The SECRET_KEY rotation (and the
``-v`` output check) is in test_secret_rotation.py: it runs after the other
suites because it leaves the hosts on the rotated key.
"""

import json
import os
import pathlib
import re
import secrets
import shutil
import subprocess
import time

import pytest
import requests

import loadgen
import sandbox

REPO = pathlib.Path(__file__).resolve().parents[3]
RESULTS = REPO / ".cache" / "test-results"
VENV_BIN = REPO / ".venv" / "bin"
USERS = 50
PASSWORD = "faults-Secret-42"
SESSIONS_UNIT = "redis-server@sessions"
APP_UNIT = "bundle_sample"


@pytest.fixture(scope="module")
def sessions(lb_url):
    return loadgen.logged_in_users(lb_url, "fault", PASSWORD, USERS)


def report(name, stats, **extra):
    data = {"test": name, **extra, **{k: v for k, v in stats.items() if k != "examples"}}
    print(f"\n[faults] {name}: {json.dumps(data, sort_keys=True)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"faults-{sandbox.PREFIX}-{name}.json").write_text(json.dumps({**data, "examples": stats.get("examples")},
                                                                      indent=2, default=str))
    return data


def assert_nobody_logged_out(stats, lb_url, sessions):
    assert stats["logouts"] == 0 and stats["ws_logouts"] == 0, stats
    lost = loadgen.check_sessions(lb_url, sessions)
    assert not lost, f"{len(lost)} users logged out: {dict(list(lost.items())[:3])}"


def journal_since(host, unit, since):
    return host.run(f"journalctl -u {unit} --since '@{int(since)}' --no-pager -o cat").stdout


# --------------------------------------------------------------------------
# The sessions Redis instance goes away: slower, never logged out, never 500
# --------------------------------------------------------------------------
def _restart(redis1):
    redis1.check_output(f"systemctl restart {SESSIONS_UNIT}")


def _kill_9(redis1):
    pid = int(redis1.check_output(f"systemctl show -p MainPID --value {SESSIONS_UNIT}"))
    assert pid > 0
    redis1.check_output(f"kill -9 {pid}")
    time.sleep(3)
    # Whether systemd restarts it or leaves it failed, it must come back.
    if redis1.run(f"systemctl is-active {SESSIONS_UNIT}").stdout.strip() != "active":
        redis1.check_output(f"systemctl reset-failed {SESSIONS_UNIT}; systemctl start {SESSIONS_UNIT}")


def _stop_30s(redis1):
    redis1.check_output(f"systemctl stop {SESSIONS_UNIT}")
    time.sleep(30)
    redis1.check_output(f"systemctl start {SESSIONS_UNIT}")


@pytest.mark.parametrize("fault", [_restart, _kill_9, _stop_30s], ids=["restart", "kill-9", "stopped-30s"])
def test_sessions_redis_fault_logs_nobody_out(fault, sessions, lb_url, host_of, ansible_var):
    redis1, apps = host_of("redis1"), [host_of("app1"), host_of("app2")]
    port = ansible_var("redis1", "(redis_instances | selectattr('name', 'equalto', 'sessions') | first).port")
    since = time.time() - 1
    newcomer = None
    with loadgen.Load(lb_url, sessions) as load:
        time.sleep(3)
        fault(redis1)
        time.sleep(5)
        stats = load.stats()
    report(f"sessions-redis-{fault.__name__.strip('_')}", stats)
    assert stats["failures"] == 0, stats
    assert stats["ws_failures"] == 0, stats
    assert_nobody_logged_out(stats, lb_url, sessions)
    sandbox.wait_until(
        lambda: redis1.run(f"redis-cli -p {port} ping").stdout.strip() in ("PONG", "NOAUTH Authentication required."),
        30, "the sessions instance did not come back")
    if fault is _stop_30s:
        # The app logged the Redis outage it worked around (circuit breaker /
        # django_redis ignored exceptions), on the hosts that served requests.
        logs = "".join(journal_since(app, APP_UNIT, since) for app in apps)
        assert re.search(rf":{port} db \d+ unavailable", logs), logs[-3000:]
        # A worker logs the recovery on its first call after its breaker window
        # (5 s), which may end after the load stopped: keep users asking.
        asker = sessions[0]

        def recovery_logged():
            loadgen.check_sessions(lb_url, [asker], timeout=10)
            return any(f":{port} is answering again" in journal_since(app, APP_UNIT, since) for app in apps)

        sandbox.wait_until(recovery_logged, 30, f"no app host logged that Redis :{port} is answering again")
        # A login made while Redis was away lives in PostgreSQL only; once Redis
        # is back, the first request fills the cache again.
        redis1.check_output(f"systemctl stop {SESSIONS_UNIT}")
        try:
            newcomer = loadgen.login(lb_url, sessions[0].username, PASSWORD)
        finally:
            redis1.check_output(f"systemctl start {SESSIONS_UNIT}")
        admin = ansible_var("redis1", "redis_admin_password")
        cli = ["redis-cli", "--no-auth-warning", "--user", "admin", "-p", str(port)]

        def cached():
            out = sandbox.docker_exec("redis1", [*cli, "--scan", "--pattern", f"*{newcomer.sessionid}*"],
                                      env={"REDISCLI_AUTH": admin}, timeout=30).stdout
            return newcomer.sessionid in out

        sandbox.wait_until(lambda: redis1.run(f"systemctl is-active {SESSIONS_UNIT}").stdout.strip() == "active", 30,
                           "sessions instance not active")
        assert not cached(), "a session created while Redis was stopped is already in Redis"

        def request_then_cached():
            # Requests keep coming (as they would): once the app's circuit
            # breaker lets Redis in again, the next read refills the cache.
            lost = loadgen.check_sessions(lb_url, [newcomer], timeout=10)
            assert not lost, lost
            return cached()

        sandbox.wait_until(request_then_cached, 30, "the session was not cached again after Redis came back")


# --------------------------------------------------------------------------
# PostgreSQL restarted: errors inside the window are counted, then recovery
# --------------------------------------------------------------------------
def test_postgresql_restart_recovers_without_a_manual_step(sessions, lb_url, host_of, container_ip):
    db1 = host_of("db1")
    with loadgen.Load(lb_url, sessions) as load:
        time.sleep(3)
        restart_started = time.monotonic()
        db1.check_output("systemctl restart postgresql")
        restart_seconds = round(time.monotonic() - restart_started, 1)
        time.sleep(8)
        stats = load.stats()
    data = report("postgresql-restart", stats, restart_seconds=restart_seconds)
    # Errors inside the restart window are expected and reported (above); after
    # it the app answers again by itself, and nobody is logged out.
    for name in ("app1", "app2"):
        health = requests.get(f"http://{container_ip(name)}:8000/healthz", headers={"Host": "localhost"}, timeout=10)
        assert health.status_code == 200 and health.json()["database"] is True, (name, health.text)
    assert_nobody_logged_out(stats, lb_url, sessions)
    assert data["requests"] > 0


# --------------------------------------------------------------------------
# One app host stopped under load: HAProxy routes around it
# --------------------------------------------------------------------------
def test_stopped_app_host_is_routed_around(sessions, lb_url, host_of):
    app2 = host_of("app2")
    try:
        with loadgen.Load(lb_url, sessions) as load:
            time.sleep(3)
            app2.check_output(f"systemctl stop {APP_UNIT}")
            time.sleep(15)
            app2.check_output(f"systemctl start {APP_UNIT}")
            time.sleep(8)
            stats = load.stats()
    finally:
        app2.run(f"systemctl start {APP_UNIT}")
    report("app-host-stopped", stats)
    assert stats["failures"] == 0, stats
    assert stats["ws_failures"] == 0, stats
    assert_nobody_logged_out(stats, lb_url, sessions)


# --------------------------------------------------------------------------
# An unreachable host stops the deploy before anything changes
# --------------------------------------------------------------------------
def test_unreachable_host_stops_before_any_change(tmp_path, host_of):
    inventory = tmp_path / "sandbox"
    shutil.copytree(REPO / "inventories" / "sandbox", inventory, symlinks=True)
    (inventory / "host_vars").mkdir(exist_ok=True)
    (inventory / "host_vars" / "app2.yml").write_text(f"ansible_host: {sandbox.PREFIX}-no-such-container\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), BUNDLE_SANDBOX_PREFIX=sandbox.PREFIX,
               PATH=f"{VENV_BIN}:{env.get('PATH', '')}")
    env.setdefault("BUNDLE_SECRETS_DIR", str(REPO / "inventories" / "sandbox" / ".secrets"))
    before = host_of("app1").check_output("readlink /srv/bundle_sample/current")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
                           str(REPO / "playbooks" / "rolling_migrate.yml")],
                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900, check=False)
    out = proc.stdout
    assert proc.returncode != 0
    assert "Unreachable or failed: app2. Nothing was changed." in out, out[-4000:]
    recap = out[out.rindex("PLAY RECAP"):]
    assert set(re.findall(r"changed=(\d+)", recap)) == {"0"}, recap
    assert "Stage the release" not in out, "a host was staged after the reachability check failed"
    assert host_of("app1").check_output("readlink /srv/bundle_sample/current") == before


# --------------------------------------------------------------------------
# No secret in a world-readable file on any host
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lb1", "app1", "app2", "db1", "redis1"])
def test_no_secret_in_a_world_readable_file(name, secret_values, host_of):
    values = dict(secret_values)
    # Self-check of the scanner: a planted world-readable file with a token
    # that is not a real secret must be found.
    token = "scan-selftest-" + secrets.token_hex(8)
    planted = "/srv/.bundle-scan-selftest"
    host_of(name).check_output(f"printf '%s' {token} > {planted} && chmod 0644 {planted}")
    values["self-check token"] = token
    # One grep over every world-readable file for all secrets at once (the
    # patterns file lives on tmpfs, 0600, removed at the end), then name them.
    script = r"""
umask 077
p=$(mktemp /run/secret-scan.XXXXXX)
printf '%s\n' "$BUNDLE_SCAN_SECRETS" > "$p"
find /etc /srv /usr/local /var/lib/redis /var/lib/postgresql /var/backups /home /root /opt /tmp -xdev \
    -type f -perm -o+r -size -20M -print0 2>/dev/null \
  | xargs -0 -r grep -lF -f "$p" -- 2>/dev/null \
  | while IFS= read -r f; do
      i=0
      while IFS= read -r v; do
        grep -qF -- "$v" "$f" && echo "$i $f"
        i=$((i + 1))
      done < "$p"
    done
rm -f "$p"
"""
    proc = sandbox.docker_exec(name, ["sh", "-c", script], env={"BUNDLE_SCAN_SECRETS": "\n".join(values.values())},
                               timeout=300)
    host_of(name).run(f"rm -f {planted}")
    assert proc.returncode == 0, proc.stderr
    names = list(values)
    found = [f"{names[int(line.split(' ', 1)[0])]} in {line.split(' ', 1)[1]}" for line in proc.stdout.splitlines()]
    assert f"self-check token in {planted}" in found, (found, proc.stderr[-2000:])
    found.remove(f"self-check token in {planted}")
    assert not found, f"world-readable files on {name} hold secrets: {found}"
