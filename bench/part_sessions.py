"""Part 1: session engines through the load balancer.

For each configuration: apply it with ``playbooks/app.yml -e <json>`` (rolling
restart), check that the app hosts really run it, log N users in through the
login form, then for each concurrency of ``BENCH_CONNECTIONS`` (16: the CPUs
saturated; 2: bound by the latency of a request) warm up and measure a fixed
duration of authenticated ``GET /whoami`` with ``wrk`` (cookies rotated by
whoami.lua). Rounds alternate the order of the configurations. The defaults
are restored at the end (``app.yml`` without extra vars).
"""

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import time

import common
import loadgen

ENGINE = "django.contrib.sessions.backends."
# Order: the three configurations the targets compare (the original
# db+SER, the bundle's engine, cache) run side by side in the middle, so each
# ratio is measured within a few minutes, not across a whole round; the others
# come first. Even rounds run the list reversed. The machine is shared: the
# same configuration moves by up to 25% over a run, within minutes far less.
CONFIGS = [
    ("cached_db+SER", {"django_session_engine": ENGINE + "cached_db", "django_session_save_every_request": True}),
    ("cache+SER", {"django_session_engine": ENGINE + "cache", "django_session_save_every_request": True}),
    ("db", {"django_session_engine": ENGINE + "db", "django_session_save_every_request": False}),
    ("cached_db", {"django_session_engine": ENGINE + "cached_db", "django_session_save_every_request": False}),
    ("db+SER", {"django_session_engine": ENGINE + "db", "django_session_save_every_request": True}),
    ("bundle", {"django_session_engine": "bundle_runtime.sessions", "django_session_save_every_request": False}),
    ("cache", {"django_session_engine": ENGINE + "cache", "django_session_save_every_request": False}),
]
USERS = int(os.environ.get("BENCH_SESSION_USERS", "20"))
PASSWORD = "bench-Sessions-31"
WARMUP = int(os.environ.get("BENCH_WARMUP_S", "5"))
DURATION = int(os.environ.get("BENCH_DURATION_S", "20"))
#: wrk concurrencies, each measured after every switch: 16 saturates the two
#: CPUs (throughput bound by CPU), 2 leaves them idle half the time (bound by
#: the latency of one request, like the issue's single-client measurement).
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16,2").split(",") if c.strip()]
THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
LUA = common.BENCH / "whoami.lua"

_SETTINGS = ("from django.conf import settings\n"
             "import json\n"
             "print('BENCH_SETTINGS ' + json.dumps([settings.SESSION_ENGINE, settings.SESSION_SAVE_EVERY_REQUEST]))\n")


def _ms(value):
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", value).groups()
    return round(float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 3)


def parse_wrk(text):
    out = {}
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(match.group(1)) if match else None
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        out[f"p{pct}_ms"] = _ms(match.group(1)) if match else None
    match = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    out["requests"] = int(match.group(1)) if match else None
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(map(int, match.groups())) if match else 0
    match = re.search(r"BENCH_BAD (\d+) of (\d+)", text)
    out["not_authenticated"] = int(match.group(1)) if match else None
    return out


def wrk(cookie_file, seconds, connections):
    """Run wrk; return (parsed result, client CPU seconds / wall seconds = cores used by the client)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        ["wrk", f"-t{min(THREADS, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
         "-s", str(LUA), common.LB_URL, "--", str(cookie_file)],
        capture_output=True, text=True, timeout=seconds + 60, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = parse_wrk(proc.stdout)
    result["client_cpu_cores"] = round(cpu / wall, 3)
    return result, proc.stdout


def running_settings():
    """[(host, SESSION_ENGINE, SESSION_SAVE_EVERY_REQUEST)] as the deployed settings say."""
    out = []
    for host in ("app1", "app2"):
        proc = common.docker_exec(host, ["django-manage", "shell", "-c", _SETTINGS], timeout=120)
        match = re.search(r"^BENCH_SETTINGS (.*)$", proc.stdout, re.M)
        out.append([host, *(json.loads(match.group(1)) if match else [None, None])])
    return out


def measure(label, extra_vars, names, round_no):
    """Apply one configuration, log the users in, measure every concurrency: one row per concurrency."""
    row = {"config": label, "round": round_no, "vars": extra_vars}
    common.log(f"round {round_no}: applying {label} with playbooks/app.yml")
    run = common.playbook(f"sessions-r{round_no}-{label}", "playbooks/app.yml", "-e", json.dumps(extra_vars))
    row["apply_seconds"] = run.seconds
    if run.rc != 0:
        row["status"] = f"apply failed (rc={run.rc}, see bench/results/tmp/{run.log_path.name})"
        common.log(row["status"])
        return [row]
    settings = running_settings()
    row["running"] = settings
    want = [extra_vars["django_session_engine"], extra_vars["django_session_save_every_request"]]
    if any(s[1:] != want for s in settings):
        row["status"] = f"settings not applied: {settings}"
        return [row]
    try:
        sessions = loadgen.login_all(common.LB_URL, names, PASSWORD, workers=4, tenant_every=0)
    except Exception as exc:  # noqa: BLE001 - reported in the row
        row["status"] = f"login failed: {exc}"[:500]
        return [row]
    cookie_file = common.SCRATCH / "cookies.txt"
    cookie_file.write_text("".join(f"{s.sessionid}\n" for s in sessions))
    rows = []
    for connections in CONNECTIONS:
        wrk(cookie_file, WARMUP, connections)
        result, raw = wrk(cookie_file, DURATION, connections)
        (common.SCRATCH / f"wrk-r{round_no}-{label}-c{connections}.txt").write_text(raw)
        rows.append({**row, **result, "connections": connections, "users": len(sessions), "status": "ok"})
        common.log(f"{label} c{connections}: {result['rps']} req/s p50 {result['p50_ms']} ms "
                   f"p99 {result['p99_ms']} ms, not authenticated {result['not_authenticated']}, "
                   f"client {result['client_cpu_cores']} cores")
    lost = loadgen.check_sessions(common.LB_URL, sessions)
    for r in rows:
        r["users_logged_out_after"] = len(lost)
    return rows


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


PAIRS = [("bundle", "cache"), ("bundle", "cached_db"), ("bundle", "db+SER"), ("cached_db+SER", "db+SER"),
         ("cache", "db+SER"), ("cache+SER", "db+SER"), ("cached_db", "db+SER"), ("db", "db+SER")]


def _summarize_one(rows):
    by = {}
    for row in rows:
        if row.get("status") == "ok" and row.get("rps"):
            by.setdefault(row["config"], []).append(row)
    means = {label: {"rps": round(statistics.mean(r["rps"] for r in rs), 1),
                     "p50_ms": round(statistics.mean(r["p50_ms"] for r in rs), 2),
                     "p99_ms": round(statistics.mean(r["p99_ms"] for r in rs), 2),
                     "rounds": len(rs)} for label, rs in by.items()}
    ratios = {}
    for a, b in PAIRS:
        entry = {"mean": _ratio(means.get(a, {}).get("rps"), means.get(b, {}).get("rps"))}
        for round_no in sorted({r["round"] for r in rows}):
            ra = next((r["rps"] for r in by.get(a, []) if r["round"] == round_no), None)
            rb = next((r["rps"] for r in by.get(b, []) if r["round"] == round_no), None)
            entry[f"round{round_no}"] = _ratio(ra, rb)
        # Median of the per-round ratios: each measured within one round, so a
        # round where the whole machine was slower does not weigh more.
        per_round = [v for k, v in entry.items() if k.startswith("round") and v is not None]
        entry["median"] = round(statistics.median(per_round), 3) if per_round else None
        ratios[f"{a} / {b}"] = entry
    return means, ratios


def summarize(rows):
    """({"c16": means, "c2": ...}, {"c16": ratios, ...}): one summary per concurrency."""
    means, ratios = {}, {}
    for connections in sorted({r["connections"] for r in rows if r.get("connections")}, reverse=True):
        key = f"c{connections}"
        means[key], ratios[key] = _summarize_one([r for r in rows if r.get("connections") == connections])
    return means, ratios


def run():
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (bench/run.sh installs the Debian package)")
    common.ensure_site()
    names = loadgen.create_users("benchsess", USERS, password=PASSWORD, sandbox_prefix=common.PREFIX)
    rows = []
    started = time.time()
    data = {"machine": common.machine(), "method": {
        "client": "wrk", "threads": THREADS, "connections": CONNECTIONS, "warmup_s": WARMUP,
        "duration_s": DURATION, "users": USERS, "rounds": ROUNDS, "path": "GET /whoami (Host: localhost)",
        "via": common.LB_URL, "order": "round 1 in list order, round 2 reversed, ..."}}
    try:
        for round_no in range(1, ROUNDS + 1):
            order = CONFIGS if round_no % 2 else list(reversed(CONFIGS))
            for label, extra_vars in order:
                rows.extend(measure(label, extra_vars, names, round_no))
                data["rows"] = rows
                data["means"], data["ratios"] = summarize(rows)
                common.write_json("sessions", data)
    finally:
        common.log("restoring the default session settings (playbooks/app.yml without extra vars)")
        restore = common.playbook("sessions-restore", "playbooks/app.yml")
        data["restore"] = {"rc": restore.rc, "seconds": restore.seconds, "running": running_settings()}
        data["rows"] = rows
        data["means"], data["ratios"] = summarize(rows)
        data["seconds"] = round(time.time() - started, 1)
        common.write_json("sessions", data)
    if data["restore"]["rc"] != 0:
        raise RuntimeError("restoring the default session settings failed")
    return data
