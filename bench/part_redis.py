"""Part 2: SET/GET throughput of the sessions Redis instance per AOF fsync policy.

``redis-benchmark`` runs inside the redis host's container against the
sessions instance (port 6380) as the admin ACL user, on a scratch database
(``--dbnum``, flushed at the end; sessions live in db 0). Policies are switched
with ``CONFIG SET appendonly/appendfsync``; the configured values are read
first and restored (and checked with ``CONFIG GET``) at the end. The admin
password travels only through the environment (never argv on the controller,
never in logs or results).
"""

import os
import pathlib
import re
import statistics
import time

import common

PORT = int(os.environ.get("BENCH_REDIS_PORT", "6380"))
SCRATCH_DB = int(os.environ.get("BENCH_REDIS_DB", "9"))
REQUESTS = int(os.environ.get("BENCH_REDIS_REQUESTS", "100000"))
CLIENTS = int(os.environ.get("BENCH_REDIS_CLIENTS", "20"))
VALUE_SIZE = int(os.environ.get("BENCH_REDIS_VALUE_BYTES", "512"))  # a small session payload
ROUNDS = int(os.environ.get("BENCH_REDIS_ROUNDS", os.environ.get("BENCH_ROUNDS", "2")))
POLICIES = [("everysec", "yes", "everysec"), ("always", "yes", "always"), ("aof off", "no", None)]


def admin_password():
    """The sandbox's redis admin password (never printed)."""
    secrets = pathlib.Path(os.environ.get("BUNDLE_SECRETS_DIR", str(common.INVENTORY / ".secrets"))) / "redis_admin"
    if secrets.exists():
        return secrets.read_text().split(" salt=")[0].strip()
    raise RuntimeError(f"{secrets} missing: run the sandbox deploy first")


def cli(password, *args, db=None):
    argv = ["redis-cli", "--no-auth-warning", "--user", "admin", "-p", str(PORT)]
    if db is not None:
        argv += ["-n", str(db)]
    proc = common.docker_exec("redis1", [*argv, *args], env={"REDISCLI_AUTH": password}, timeout=120)
    if proc.returncode != 0 or proc.stdout.startswith(("ERR", "NOAUTH", "WRONGPASS", "NOPERM")):
        raise RuntimeError(f"redis-cli {args[0]} failed: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    return proc.stdout.strip()


def config_get(password, name):
    out = cli(password, "CONFIG", "GET", name).splitlines()
    return out[1] if len(out) >= 2 else None


def info(password, section):
    return dict(line.split(":", 1) for line in cli(password, "INFO", section).splitlines() if ":" in line)


def wait_rewrite(password, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        persistence = info(password, "persistence")
        if persistence.get("aof_rewrite_in_progress", "0").strip() == "0" \
                and persistence.get("aof_rewrite_scheduled", "0").strip() == "0":
            return
        time.sleep(0.5)
    raise RuntimeError("AOF rewrite still running")


def apply(password, appendonly, appendfsync):
    if appendfsync:
        cli(password, "CONFIG", "SET", "appendfsync", appendfsync)
    cli(password, "CONFIG", "SET", "appendonly", appendonly)
    wait_rewrite(password)  # turning AOF on rewrites the file in the background first


def benchmark(password):
    # Shell expansion happens inside the container: the password is only in the environment here.
    script = (f'exec redis-benchmark --user admin -a "$REDISCLI_AUTH" -p {PORT} --dbnum {SCRATCH_DB} '
              f'-t set,get -n {REQUESTS} -c {CLIENTS} -d {VALUE_SIZE} -r 100000 --csv')
    proc = common.docker_exec("redis1", ["sh", "-c", script], env={"REDISCLI_AUTH": password}, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed ({proc.returncode}): {proc.stderr[-500:]}")
    out = {}
    for line in proc.stdout.splitlines():
        match = re.match(r'^"(SET|GET)","([\d.]+)"', line)
        if match:
            out[match.group(1)] = float(match.group(2))
    if set(out) != {"SET", "GET"}:
        raise RuntimeError(f"unexpected redis-benchmark output: {proc.stdout[-500:]}")
    return out


def run():
    common.ensure_site()
    password = admin_password()
    version = cli(password, "INFO", "server")
    version = re.search(r"redis_version:(\S+)", version).group(1)
    configured = {"appendonly": config_get(password, "appendonly"),
                  "appendfsync": config_get(password, "appendfsync")}
    common.log(f"redis {version}, sessions instance configured with {configured}")
    rows = []
    started = time.time()
    try:
        for round_no in range(1, ROUNDS + 1):
            order = POLICIES if round_no % 2 else list(reversed(POLICIES))
            for label, appendonly, appendfsync in order:
                apply(password, appendonly, appendfsync)
                result = benchmark(password)
                rows.append({"policy": label, "round": round_no, "set_ops": result["SET"], "get_ops": result["GET"]})
                common.log(f"{label}: SET {result['SET']} ops/s, GET {result['GET']} ops/s")
    finally:
        apply(password, configured["appendonly"], configured["appendfsync"])
        cli(password, "FLUSHDB", db=SCRATCH_DB)
        restored = {"appendonly": config_get(password, "appendonly"),
                    "appendfsync": config_get(password, "appendfsync")}
        common.log(f"restored: {restored}")
    means = {}
    for label, _, _ in POLICIES:
        mine = [r for r in rows if r["policy"] == label]
        if mine:
            means[label] = {"set_ops": round(statistics.mean(r["set_ops"] for r in mine)),
                            "get_ops": round(statistics.mean(r["get_ops"] for r in mine))}
    base = means.get("everysec")
    ratios = {label: {"set": round(m["set_ops"] / base["set_ops"], 3), "get": round(m["get_ops"] / base["get_ops"], 3)}
              for label, m in means.items()} if base else {}
    data = {"machine": common.machine(), "redis_version": version,
            "method": {"tool": "redis-benchmark inside the redis host container", "port": PORT,
                       "requests": REQUESTS, "clients": CLIENTS, "value_bytes": VALUE_SIZE,
                       "keyspace": 100000, "scratch_db": SCRATCH_DB, "rounds": ROUNDS, "pipeline": 1},
            "configured": configured, "restored": restored, "restored_ok": restored == configured,
            "rows": rows, "means": means, "ratios_to_everysec": ratios,
            "seconds": round(time.time() - started, 1)}
    common.write_json("redis", data)
    if restored != configured:
        raise RuntimeError(f"Redis settings not restored: {restored} != {configured}")
    return data
