"""Shared helpers of the benchmarks: environment, ansible-playbook runs, results.

Everything runs against the bench sandbox (``BUNDLE_SANDBOX_PREFIX``, default
``bundle-bench``; load balancer on 127.0.0.1:``BUNDLE_LB_PORT``, default 18090),
never against the ``make deploy`` or molecule sandboxes.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
SCRATCH = RESULTS / "tmp"  # git-ignored: playbook logs, release trees, fact cache
INVENTORY = REPO / "inventories" / "sandbox"
VENV_BIN = REPO / ".venv" / "bin"
PREFIX = os.environ.get("BUNDLE_SANDBOX_PREFIX", "bundle-bench")
LB_PORT = int(os.environ.get("BUNDLE_LB_PORT", "18090"))
LB_URL = f"http://127.0.0.1:{LB_PORT}"

# loadgen (users, login, Load with a latency timeline) is the molecule suites' own.
sys.path.insert(0, str(REPO / "molecule" / "default" / "tests"))

RECAP_RE = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
PROFILE_RE = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s\s*$")
PLAY_RE = re.compile(r"^PLAY \[(.*)\] \*+")
TASK_RE = re.compile(r"^TASK \[(.*)\] \*+")
RESULT_RE = re.compile(r"^(ok|changed|failed|fatal|skipping|included): \[([^\]\s]+)")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ansible_env(**extra):
    """Only the repository's ansible.cfg applies (plus ``extra``), like the test suites."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        BUNDLE_SANDBOX_PREFIX=PREFIX,
        BUNDLE_LB_PORT=str(LB_PORT),
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    )
    for key, value in extra.items():
        if value is None or value == "":
            env.pop(key, None)  # an EMPTY ANSIBLE_CALLBACKS_ENABLED crashes ansible: unset instead
        else:
            env[key] = str(value)
    return env


class PlaybookRun:
    """Result of :func:`playbook`: rc, seconds, timestamped lines, recap, profile."""

    def __init__(self, name, rc, started, seconds, lines, log_path):
        self.name = name
        self.rc = rc
        self.started = started  # time.monotonic() at start
        self.seconds = seconds
        self.lines = lines  # [(monotonic time, line)]
        self.log_path = log_path

    @property
    def output(self):
        return "\n".join(line for _, line in self.lines)

    def recap(self):
        """{host: {ok, changed, unreachable, failed}} of the last PLAY RECAP."""
        parts = self.output.rsplit("PLAY RECAP", 1)
        if len(parts) != 2:
            return {}
        return {m.group(1): dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()[1:])))
                for m in RECAP_RE.finditer(parts[1])}

    def profile(self, top=10):
        """The slowest tasks reported by ansible.posix.profile_tasks: [(task, seconds)]."""
        tasks = []
        for _, line in self.lines:
            match = PROFILE_RE.match(line.strip())
            if match and not line.startswith(("TASK", "PLAY")):
                tasks.append((match.group(1).strip(), float(match.group(2))))
        return sorted(tasks, key=lambda t: -t[1])[:top]

    def plays(self):
        """[(monotonic time, play name)] in order, each play once (serial batches repeat the header)."""
        seen, out = set(), []
        for t, line in self.lines:
            match = PLAY_RE.match(line)
            if match and match.group(1) not in seen:
                seen.add(match.group(1))
                out.append((t, match.group(1)))
        return out

    def task_events(self, needles):
        """[(monotonic time, kind, host)] for TASK lines containing one of ``needles`` ({needle: kind}).

        The host is taken from the first result line after the task header.
        """
        events, pending = [], None
        for t, line in self.lines:
            task = TASK_RE.match(line)
            if task:
                pending = None
                for needle, kind in needles.items():
                    if needle in task.group(1):
                        pending = (t, kind)
                continue
            result = RESULT_RE.match(line)
            if result and pending:
                events.append((pending[0], pending[1], result.group(2)))
                pending = None
        return events


def playbook(name, playbook_path, *args, env=None, timeout=3600, echo=False):
    """Run ansible-playbook against the sandbox inventory, streaming and timestamping each line."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    log_path = SCRATCH / f"{name}.log"
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(REPO / playbook_path), *args]
    lines = []
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as handle:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env or ansible_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            now = time.monotonic()
            line = line.rstrip("\n")
            lines.append((now, line))
            handle.write(f"{now - started:8.2f} {line}\n")
            if echo:
                print(line, flush=True)
            if now - started > timeout:
                proc.kill()
                break
        rc = proc.wait()
    seconds = round(time.monotonic() - started, 2)
    return PlaybookRun(name, rc, started, seconds, lines, log_path)


def require(run, what):
    if run.rc != 0:
        tail = "\n".join(line for _, line in run.lines[-60:])
        raise RuntimeError(f"{what} failed (rc={run.rc}, log {run.log_path}):\n{tail}")
    return run


def docker_exec(host, argv, env=None, timeout=600):
    cmd = ["docker", "exec"]
    penv = dict(os.environ)
    for key, value in (env or {}).items():
        penv[key] = value
        cmd += ["-e", key]  # the value travels in the environment, not in argv
    cmd += [f"{PREFIX}-{host}", *argv]
    return subprocess.run(cmd, env=penv, capture_output=True, text=True, timeout=timeout, check=False)


def site_answers():
    """True when the bench sandbox's load balancer answers /healthz with 200."""
    import requests

    try:
        return requests.get(f"{LB_URL}/healthz", headers={"Host": "localhost"}, timeout=10).status_code == 200
    except requests.RequestException:
        return False


def ensure_site():
    """Create the bench sandbox and deploy site.yml unless it already answers (idempotent)."""
    if site_answers():
        return
    log(f"bench sandbox {PREFIX} not answering on {LB_URL}: creating it and running site.yml")
    require(playbook("ensure-create", "playbooks/sandbox_create.yml"), "sandbox_create.yml")
    require(playbook("ensure-site", "playbooks/site.yml"), "site.yml")


def write_json(name, data, indent=1):
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=indent) + "\n")
    log(f"wrote {path.relative_to(REPO)}")
    return path


def read_json(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine():
    """What the numbers were measured on (no host names, no secrets)."""
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load],
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
