"""Behaviour of roles/redis on the converged sandbox (redis1, seen from lb1 and app1).

Passwords never appear in a command line: they travel to redis-cli through the
REDISCLI_AUTH environment variable (``docker exec -e REDISCLI_AUTH``).
"""

import json
import subprocess
import time

import pytest
import yaml

import sandbox

REDIS_HOST = "redis1"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def docker_exec(host, argv, password=None, stdin=None, timeout=120):
    """Run argv in the container of ``host``; the password only via the environment."""
    return sandbox.docker_exec(host, argv, env=None if password is None else {"REDISCLI_AUTH": password},
                               stdin=stdin, timeout=timeout)


@pytest.fixture(scope="module")
def instances(ansible_var):
    return {i["name"]: i for i in ansible_var(REDIS_HOST, "redis_instances")}


@pytest.fixture(scope="module")
def admin(ansible_var, repo):
    """(username, password) of the admin ACL user; the name may come from the role defaults."""
    try:
        name = ansible_var(REDIS_HOST, "redis_admin_username")
    except subprocess.CalledProcessError:
        defaults = yaml.safe_load((repo / "roles/redis/defaults/main.yml").read_text())
        name = defaults["redis_admin_username"]
    return name, ansible_var(REDIS_HOST, "redis_admin_password")


@pytest.fixture(scope="module")
def app(ansible_var):
    return ansible_var(REDIS_HOST, "redis_app_username"), ansible_var(REDIS_HOST, "redis_app_password")


@pytest.fixture(scope="module")
def cli(admin):
    """cli(port, *args, user=(name, password)|None, stdin=None) -> CompletedProcess on redis1."""

    def run(port, *args, user=admin, stdin=None, host=REDIS_HOST):
        argv = ["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(port)]
        password = None
        if user is not None:
            argv += ["--user", user[0]]
            password = user[1]
        return docker_exec(host, argv + [str(a) for a in args], password=password, stdin=stdin)

    return run


def out(proc):
    return (proc.stdout + proc.stderr).strip()


def config_get(cli, port, name):
    lines = cli(port, "CONFIG", "GET", name).stdout.splitlines()
    assert len(lines) == 2 and lines[0] == name, lines
    return lines[1]


def info(cli, port, section):
    result = {}
    for line in cli(port, "INFO", section).stdout.splitlines():
        if ":" in line:
            key, value = line.strip().split(":", 1)
            result[key] = value
    return result


def main_pid(host, unit):
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


def wait_ping(cli, port, timeout=60):
    sandbox.wait_until(lambda: cli(port, "PING").stdout.strip() == "PONG", timeout,
                       f"redis on port {port} did not answer PING within {timeout}s")


def role_playbook(tmp_path):
    """A one-play playbook that runs only roles/redis on redis_servers."""
    path = tmp_path / "redis_only.yml"
    path.write_text(
        "---\n- name: Redis only\n  hosts: redis_servers\n  roles:\n    - role: redis\n"
    )
    return str(path)


def host_state(host, names):
    """What the role would change: files, units (their processes) and listeners."""
    units = " ".join(f"redis-server@{name}.service" for name in sorted(names))
    return host.check_output(
        "sha256sum /etc/redis/* /etc/systemd/system/redis-server@*.service.d/* /etc/sysctl.d/* | sort;"
        f" systemctl show -p MainPID --value {units}; ss -ltnH | sort"
    )


# --------------------------------------------------------------------------
# instances, ports, persistence
# --------------------------------------------------------------------------
def test_each_instance_listens_on_private_address_and_loopback_only(host_of, container_ip, instances):
    redis1 = host_of(REDIS_HOST)
    private = container_ip(REDIS_HOST)
    listeners = redis1.check_output("ss -ltnH").splitlines()
    for inst in instances.values():
        port = inst["port"]
        addresses = sorted(line.split()[3].rsplit(":", 1)[0] for line in listeners
                           if line.split()[3].rsplit(":", 1)[1] == str(port))
        assert addresses == sorted({private, "127.0.0.1"}), (inst["name"], addresses)
        assert redis1.service(f"redis-server@{inst['name']}").is_running
        assert redis1.service(f"redis-server@{inst['name']}").is_enabled
    # The Debian default instance is retired.
    assert not any(line.split()[3].endswith(":6379") for line in listeners)
    assert not redis1.service("redis-server").is_running


def test_persistence_and_memory_settings_per_instance(cli, instances):
    for inst in instances.values():
        port = inst["port"]
        expected_aof = "yes" if inst.get("persistence", "none") == "aof" else "no"
        assert config_get(cli, port, "appendonly") == expected_aof, inst["name"]
        assert config_get(cli, port, "maxmemory-policy") == inst.get("maxmemory_policy", "noeviction")
        if inst.get("persistence", "none") == "none":
            assert config_get(cli, port, "save") == "", inst["name"]
        if expected_aof == "yes":
            assert config_get(cli, port, "appendfsync") == inst.get("appendfsync", "everysec")
            assert config_get(cli, port, "aof-use-rdb-preamble") == "yes"


def test_sessions_instance_writes_aof_files(host_of, cli, instances, app):
    sessions = instances["sessions"]
    assert cli(sessions["port"], "SET", "test:aof:probe", "1", user=app).stdout.strip() == "OK"
    appenddir = config_get(cli, sessions["port"], "dir") + "/" + config_get(cli, sessions["port"], "appenddirname")
    listing = host_of(REDIS_HOST).check_output(f"ls -1 {appenddir}").split()
    assert any(name.endswith(".manifest") for name in listing), listing
    assert any(".incr.aof" in name for name in listing), listing
    cli(sessions["port"], "DEL", "test:aof:probe", user=app)


def test_config_and_acl_files_are_not_world_readable(host_of, instances):
    redis1 = host_of(REDIS_HOST)
    for name in instances:
        for path in (f"/etc/redis/redis-{name}.conf", f"/etc/redis/users-{name}.acl"):
            f = redis1.file(path)
            assert f.exists, path
            assert f.user == "root" and f.group == "redis", path
            assert f.mode & 0o007 == 0, oct(f.mode)


def test_session_key_survives_systemctl_restart(host_of, cli, instances, app):
    port = instances["sessions"]["port"]
    assert cli(port, "SET", "test:survive:restart", "kept", user=app).stdout.strip() == "OK"
    host_of(REDIS_HOST).check_output("systemctl restart redis-server@sessions")
    wait_ping(cli, port)
    assert cli(port, "GET", "test:survive:restart", user=app).stdout.strip() == "kept"
    cli(port, "DEL", "test:survive:restart", user=app)


def test_session_key_survives_kill_9(host_of, cli, instances, app):
    redis1 = host_of(REDIS_HOST)
    port = instances["sessions"]["port"]
    unit = "redis-server@sessions"
    assert cli(port, "SET", "test:survive:kill", "kept", user=app).stdout.strip() == "OK"
    time.sleep(2)  # appendfsync everysec: at most one second is at risk
    pid = main_pid(redis1, unit)
    assert pid > 0
    redis1.check_output(f"kill -9 {pid}")

    def restarted():
        if main_pid(redis1, unit) not in (0, pid):
            return True
        if redis1.run(f"systemctl is-active {unit}").stdout.strip() in ("failed", "inactive"):
            redis1.check_output(f"systemctl start {unit}")
        return False

    sandbox.wait_until(restarted, 30, f"{unit} did not come back within 30 s after kill -9")
    wait_ping(cli, port)
    assert main_pid(redis1, unit) != pid
    assert cli(port, "GET", "test:survive:kill", user=app).stdout.strip() == "kept"
    cli(port, "DEL", "test:survive:kill", user=app)


# --------------------------------------------------------------------------
# turning AOF on for instances that hold data, and ACL changes, through the role
# --------------------------------------------------------------------------
def test_switching_loaded_instances_to_aof_keeps_every_key_and_acls_apply_live(
        host_of, cli, instances, app, ansible_playbook, tmp_path):
    """Two throwaway instances hold 500 keys with persistence rdb: "running" stays
    up, "stopped" is stopped after a SAVE. The role then switches both to AOF
    and gives the app user FLUSHDB: the running one switches live (same PID),
    the stopped one starts from its dump.rdb before AOF is turned on, the ACL
    change reaches every instance without a restart. A restart afterwards
    loads the AOF with every key."""
    redis1 = host_of(REDIS_HOST)
    playbook = role_playbook(tmp_path)
    base = list(instances.values())
    extra = {
        "running": {"name": "aofrunning", "port": 6390, "persistence": "rdb", "maxmemory": "32mb"},
        "stopped": {"name": "aofstopped", "port": 6391, "persistence": "rdb", "maxmemory": "32mb"},
    }
    units = {key: f"redis-server@{inst['name']}" for key, inst in extra.items()}
    keys = "".join(f"SET test:switch:{i} value-{i}\n" for i in range(500))
    pids_before = {name: main_pid(redis1, f"redis-server@{name}") for name in instances}
    try:
        run = ansible_playbook(playbook, "-e", json.dumps({"redis_instances": base + list(extra.values())}))
        assert run.returncode == 0, run.stdout[-4000:]
        for inst in extra.values():
            wait_ping(cli, inst["port"])
            cli(inst["port"], user=app, stdin=keys)
            assert cli(inst["port"], "DBSIZE").stdout.strip() == "500"
            assert config_get(cli, inst["port"], "appendonly") == "no"
        assert cli(6391, "SAVE").stdout.strip() == "OK"
        redis1.check_output(f"systemctl stop {units['stopped']}")
        pid_running = main_pid(redis1, units["running"])

        to_aof = [dict(inst, persistence="aof", appendfsync="everysec") for inst in extra.values()]
        run = ansible_playbook(playbook, "-e", json.dumps({
            "redis_instances": base + to_aof,
            "redis_app_allowed_dangerous_commands": ["flushdb"],
        }))
        assert run.returncode == 0, run.stdout[-4000:]
        # The running instance switched live: same process.
        assert main_pid(redis1, units["running"]) == pid_running
        for inst in extra.values():
            port, name = inst["port"], inst["name"]
            assert config_get(cli, port, "appendonly") == "yes", name
            persistence = info(cli, port, "persistence")
            assert persistence["aof_rewrite_in_progress"] == "0", name
            assert persistence["aof_last_bgrewrite_status"] == "ok", name
            assert redis1.file(f"/var/lib/redis/{name}/appendonlydir/appendonly.aof.manifest").exists
            assert redis1.check_output(f"grep ^appendonly /etc/redis/redis-{name}.conf") == "appendonly yes"
            assert cli(port, "DBSIZE").stdout.strip() == "500", name
        # ACL change applied live everywhere (ACL LOAD), no restart.
        for name, inst in instances.items():
            assert main_pid(redis1, f"redis-server@{name}") == pids_before[name], name
            assert out(cli(inst["port"], "ACL", "DRYRUN", app[0], "FLUSHDB")) == "OK", name

        # A restart loads the AOF: every key is still there.
        for key, inst in extra.items():
            redis1.check_output(f"systemctl restart {units[key]}")
            wait_ping(cli, inst["port"])
            assert cli(inst["port"], "DBSIZE").stdout.strip() == "500", inst["name"]
            assert cli(inst["port"], "GET", "test:switch:499", user=app).stdout.strip() == "value-499"
    finally:
        for unit in units.values():
            name = unit.split("@", 1)[1]
            redis1.run(f"systemctl disable --now {unit}")
            redis1.run(f"rm -rf /etc/redis/redis-{name}.conf /etc/redis/users-{name}.acl"
                       f" /etc/systemd/system/{unit}.service.d /var/lib/redis/{name}")
        redis1.run("systemctl daemon-reload; systemctl reset-failed")

    # Back to the inventory's values: FLUSHDB denied again, still without a restart.
    run = ansible_playbook(playbook)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "RUNNING HANDLER" not in run.stdout, run.stdout[-4000:]
    for name, inst in instances.items():
        assert main_pid(redis1, f"redis-server@{name}") == pids_before[name], name
        assert "no permissions" in out(cli(inst["port"], "ACL", "DRYRUN", app[0], "FLUSHDB")), name


def test_port_out_of_range_is_refused_before_any_change(host_of, instances, ansible_playbook, tmp_path):
    redis1 = host_of(REDIS_HOST)
    before = host_state(redis1, instances)
    bad = [dict(i) for i in instances.values()]
    bad[0]["port"] = 70000
    run = ansible_playbook(role_playbook(tmp_path), "-e", json.dumps({"redis_instances": bad}))
    assert run.returncode != 0
    assert "redis_instances[].port must be between 1 and 65535 (got 70000)" in run.stdout
    assert host_state(redis1, instances) == before


# --------------------------------------------------------------------------
# memory pressure: cache evicts, sessions refuses writes
# --------------------------------------------------------------------------
def _fill(cli, port, app, prefix, count, size=1000):
    value = "x" * size
    return cli(port, user=app, stdin="".join(f"SET {prefix}:{i} {value}\n" for i in range(count)))


@pytest.mark.parametrize("name", ["cache", "sessions"])
def test_memory_pressure(cli, instances, app, name):
    port = instances[name]["port"]
    original = config_get(cli, port, "maxmemory")
    evicted_before = int(info(cli, port, "stats")["evicted_keys"])
    used = int(info(cli, port, "memory")["used_memory"])
    prefix = f"test:pressure:{name}"
    try:
        assert cli(port, "CONFIG", "SET", "maxmemory", str(used + 1024 * 1024)).stdout.strip() == "OK"
        filled = _fill(cli, port, app, prefix, 4000)
        written = len([k for k in cli(port, "--scan", "--pattern", f"{prefix}:*", user=app).stdout.split() if k])
        evicted = int(info(cli, port, "stats")["evicted_keys"]) - evicted_before
        if name == "cache":
            # allkeys-lru: writes succeed, old keys disappear.
            assert "OOM" not in out(filled) and "ERR" not in out(filled)
            assert evicted > 0
            assert written < 4000
        else:
            # noeviction: writes refused with OOM, nothing evicted, earlier keys kept.
            assert "OOM command not allowed" in out(filled)
            assert evicted == 0
            assert 0 < written < 4000
            assert cli(port, "EXISTS", f"{prefix}:0", user=app).stdout.strip() == "1"
    finally:
        cli(port, "CONFIG", "SET", "maxmemory", original)
        keys = [k for k in cli(port, "--scan", "--pattern", f"{prefix}:*", user=app).stdout.split() if k]
        if keys:
            cli(port, user=app, stdin="".join(f"UNLINK {k}\n" for k in keys))
    assert config_get(cli, port, "maxmemory") == original


# --------------------------------------------------------------------------
# ACL users
# --------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "GET", "maxmemory"], ["KEYS", "*"],
    ["DEBUG", "SLEEP", "0"], ["SHUTDOWN", "NOSAVE"], ["ACL", "LIST"],
])
def test_app_user_cannot_run_dangerous_commands(cli, instances, app, command):
    for inst in instances.values():
        result = out(cli(inst["port"], *command, user=app))
        # DEBUG is also refused by enable-debug-command before the ACL check.
        assert "NOPERM" in result or "not allowed" in result, (inst["name"], command, result)
        verdict = out(cli(inst["port"], "ACL", "DRYRUN", app[0], *command))
        assert "no permissions" in verdict, (inst["name"], command, verdict)


def test_app_user_can_run_what_django_and_channels_need(cli, instances, app):
    port = instances["channels"]["port"]
    script = "redis.call('ZADD', KEYS[1], 1, 'm'); redis.call('EXPIRE', KEYS[1], 60); return redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')"
    commands = (
        "SELECT 1\nSELECT 0\nSET test:acl:k v EX 60 NX\nGET test:acl:k\nEXPIRE test:acl:k 30\nTTL test:acl:k\n"
        "INCRBY test:acl:n 2\nMGET test:acl:k test:acl:n\nSCAN 0 MATCH test:acl:* COUNT 100\n"
        f'EVAL "{script}" 1 test:acl:z\n'
        "ZREMRANGEBYSCORE test:acl:z 0 0\nZRANGE test:acl:z 0 -1\nBZPOPMIN test:acl:z 1\n"
        "PUBLISH test:acl:chan hello\nDEL test:acl:k test:acl:n test:acl:z\n"
    )
    result = out(cli(port, user=app, stdin=commands))
    assert "NOPERM" not in result and "ERR" not in result, result


def test_client_without_password_is_refused(cli, instances):
    for inst in instances.values():
        result = out(cli(inst["port"], "GET", "x", user=None))
        assert "NOAUTH" in result, result
        # and the default user cannot be used even by naming it
        result = out(cli(inst["port"], "PING", user=("default", "")))
        assert "PONG" not in result, result


def test_wrong_password_is_refused(cli, instances, app):
    result = out(cli(instances["sessions"]["port"], "PING", user=(app[0], "not-the-password")))
    assert "WRONGPASS" in result or "AUTH failed" in result, result


def _tcp_exchange(host, port, payload, password=None):
    """Talk RESP over bash /dev/tcp from another host (no redis-cli needed there)."""
    script = (
        f'exec 3<>/dev/tcp/{REDIS_HOST}/{port} || exit 3; '
        f'printf "{payload}" "$REDISCLI_AUTH" >&3; timeout 3 cat <&3; exit 0'
    )
    return docker_exec(host, ["bash", "-c", script], password=password)


def test_other_host_without_credentials_is_refused(instances):
    for inst in instances.values():
        result = _tcp_exchange("lb1", inst["port"], "PING\\r\\nGET x\\r\\nQUIT\\r\\n%.0s")
        assert result.returncode == 0, out(result)
        assert "-NOAUTH" in result.stdout and "PONG" not in result.stdout, result.stdout


def test_app_host_with_credentials_is_served(instances, app):
    payload = f"AUTH {app[0]} %s\\r\\nPING\\r\\nQUIT\\r\\n"
    result = _tcp_exchange("app1", instances["sessions"]["port"], payload, password=app[1])
    assert result.returncode == 0, out(result)
    assert "+OK" in result.stdout and "+PONG" in result.stdout, result.stdout
