"""Proof of playbooks/rolling_migrate.yml: migrations during a rolling deploy, under load.

50 users log in once through the load balancer (every fifth on a tenant host);
while each playbook run goes on, :class:`loadgen.Load` keeps them busy over
HTTP (``/whoami``) and WebSocket (``/ws/whoami/``) and counts failures,
logouts and dropped sockets. Each test prints its counts and writes them, with
the latency timeline, to ``.cache/test-results/rolling-<sandbox prefix>-<test>.json``.

The release fixtures (tests/fixtures/releases, built by releases.py) are:
r2 = expand (0005, before the deploy) + contract (0006, after the deploy);
r3 = r2 + a migration that fails; r4 = r2 + an ASGI app that never starts.
The module leaves the sandbox on r2 (test_secret_rotation.py and
test_session_engine.py, which run after it, redeploy that release).

The tests run in file order and build on each other (r2 deployed by the
second is the baseline of the others).
"""

import json
import pathlib
import re
import time

import pytest
import requests

import loadgen
import sandbox
from releases import build_release, release_version

PLAYBOOK = "playbooks/rolling_migrate.yml"
APP_HOSTS = ("app1", "app2")
ROOT = "/srv/bundle_sample"
USERS = 50
PASSWORD = "rolling-Load-test-7"
FAILING_MESSAGE = "fixture: this migration fails on purpose"
# Quiet time with load before and after each playbook run (seconds).
SETTLE = 5
RECAP_RE = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
RESULTS = pathlib.Path(__file__).resolve().parents[3] / ".cache" / "test-results"


def current_links(link="current"):
    """{app host: target of the `current` (or ``link``) link}."""
    links = {}
    for host in APP_HOSTS:
        proc = sandbox.docker_exec(host, ["readlink", f"{ROOT}/{link}"])
        assert proc.returncode == 0, proc.stderr
        links[host] = proc.stdout.strip()
    return links


def served_releases(container_ip):
    """{app host: release id its /healthz reports}, asked directly (not through the load balancer)."""
    releases = {}
    for host in APP_HOSTS:
        answer = requests.get(f"http://{container_ip(host)}:8000/healthz", headers={"Host": "localhost"},
                              timeout=30)
        assert answer.status_code == 200, (host, answer.status_code, answer.text[:300])
        body = answer.json()
        assert body["database"] and body["cache"], (host, body)
        releases[host] = body["release"]
    return releases


_APPLIED = (
    "import json\n"
    "from django.db import connection\n"
    "from django.db.migrations.recorder import MigrationRecorder\n"
    "rows = MigrationRecorder(connection).migration_qs.values_list('app', 'name')\n"
    "print('APPLIED ' + json.dumps(sorted(map(list, rows))))\n"
)


def applied_migrations():
    """Sorted (app, name) rows of django_migrations (read with the current release's code)."""
    return [tuple(row) for row in sandbox.django_shell(_APPLIED, "APPLIED", timeout=300)]


def moderation(applied):
    return sorted(name for app, name in applied if app == "moderation")


def recap(output):
    """{host: (ok, changed, unreachable, failed)} from the last PLAY RECAP of ``output``."""
    tail = output.rsplit("PLAY RECAP", 1)
    assert len(tail) == 2, f"no PLAY RECAP in the output:\n{output[-3000:]}"
    return {m.group(1): tuple(int(g) for g in m.groups()[1:]) for m in RECAP_RE.finditer(tail[1])}


def tasks(output):
    """The output split into task blocks ("TASK [...]" up to the next task or play)."""
    return [b for b in re.split(r"\n(?=TASK \[|PLAY \[|PLAY RECAP)", output) if b.startswith("TASK [")]


def play_of(output, needle):
    """Header of the play whose output contains ``needle`` (or None)."""
    for block in re.split(r"\n(?=PLAY \[)", output):
        if needle in block and block.startswith("PLAY ["):
            return block.split("\n", 1)[0]
    return None


def tail(proc, n=8000):
    return f"rc={proc.returncode}\n{proc.stdout[-n:]}"


def report(name, capsys, load=None, proc=None, **extra):
    """Print the counts of a test (outside pytest's capture) and keep them as JSON."""
    data = {"test": name, **extra}
    if proc is not None:
        data["playbook_rc"] = proc.returncode
    if load is not None:
        path = load.write(str(RESULTS / f"rolling-{sandbox.PREFIX}-{name}.json"), extra=data)
        stats = load.stats()
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"rolling-{sandbox.PREFIX}-{name}.json"
        path.write_text(json.dumps(data))
        stats = {}
    shown = {k: v for k, v in stats.items() if k != "examples"}
    with capsys.disabled():
        print(f"\n[rolling] {name}: {json.dumps({**data, **shown}, sort_keys=True)}")
        for example in stats.get("examples", [])[:10]:
            print(f"[rolling] {name}:   {example}")
        print(f"[rolling] {name}: details in {path}")
    return stats


def run_under_load(ansible_playbook, lb_url, sessions, *args):
    """Run the rolling playbook while the users are busy; return (proc, load, seconds)."""
    with loadgen.Load(lb_url, sessions) as load:
        time.sleep(SETTLE)
        started = time.monotonic()
        proc = ansible_playbook(PLAYBOOK, *args)
        seconds = round(time.monotonic() - started, 1)
        time.sleep(SETTLE)
    return proc, load, seconds


def assert_users_unharmed(stats, proc):
    """What a user must never see during a rolling run, whatever its outcome."""
    context = json.dumps({k: v for k, v in stats.items()}, indent=1)[:4000]
    assert stats["requests"] > 0 and stats["ws_messages"] > 0, context
    assert stats["failures"] == 0, f"HTTP errors during the run:\n{context}\n{tail(proc, 3000)}"
    assert stats["logouts"] == 0, f"users logged out (HTTP):\n{context}"
    assert stats["ws_logouts"] == 0, f"users logged out (WebSocket):\n{context}"
    assert stats["ws_failures"] == 0, f"WebSocket clients without a socket for too long:\n{context}"
    assert stats["ws_timeouts"] == 0, f"open WebSockets that stopped answering:\n{context}"
    assert stats["ws_abnormal_closes"] == 0, f"WebSockets broken by the server (not closed cleanly):\n{context}"
    assert stats["ws_connect_errors"] == 0, f"WebSocket handshakes refused:\n{context}"
    assert stats["ws_clients_alive_at_end"] == stats["ws_clients"], \
        f"WebSocket clients not answered at the end:\n{context}"


@pytest.fixture(scope="module")
def sessions(lb_url):
    """The 50 load users, logged in once through the login form via the load balancer."""
    users = loadgen.create_users("rolling", USERS, password=PASSWORD)
    return loadgen.login_all(lb_url, users, PASSWORD)


@pytest.fixture(scope="module")
def release_source(tmp_path_factory):
    """release_source('r2') -> source directory of that release fixture (built once)."""
    root = tmp_path_factory.mktemp("releases")
    built = {}

    def get(name):
        if name not in built:
            built[name] = build_release(name, root)
        return built[name]

    return get


def test_session_migrations_are_refused(ansible_playbook, lb_url, sessions, capsys):
    """`sessions zero` would delete every session: the playbook refuses before changing anything."""
    links = current_links()
    applied = applied_migrations()
    started = time.monotonic()
    proc = ansible_playbook(PLAYBOOK, "-e", json.dumps({"django_migrate_targets": ["sessions zero"]}))
    seconds = round(time.monotonic() - started, 1)
    lost = loadgen.check_sessions(lb_url, sessions)
    report("sessions-zero-refused", capsys, proc=proc, playbook_seconds=seconds, users_logged_out=len(lost))

    assert proc.returncode != 0, tail(proc)
    assert "allow_session_impacting_migrations" in proc.stdout, tail(proc)
    assert re.search(r"session", proc.stdout.split("allow_session_impacting_migrations")[0][-2000:], re.I), tail(proc)
    hosts = recap(proc.stdout)
    assert hosts, tail(proc)
    assert all(changed == 0 for _ok, changed, _u, _f in hosts.values()), (hosts, tail(proc))
    assert current_links() == links
    assert applied_migrations() == applied
    assert not lost, f"{len(lost)} users logged out: {dict(list(lost.items())[:5])}"


def test_rolling_expand_contract_under_load(ansible_playbook, lb_url, sessions, container_ip, release_source,
                                            capsys):
    """r2: expand before, contract after, host by host: nobody notices, every host ends on r2."""
    before = served_releases(container_ip)
    assert len(set(before.values())) == 1, f"hosts on mixed releases before the run: {before}"
    source = release_source("r2")

    proc, load, seconds = run_under_load(ansible_playbook, lb_url, sessions, "-e", f"django_project_source={source}")
    after = served_releases(container_ip)
    stats = report("r2-under-load", capsys, load=load, proc=proc, playbook_seconds=seconds,
                   releases_before=before, releases_after=after)

    assert proc.returncode == 0, tail(proc)
    assert_users_unharmed(stats, proc)
    # Every WebSocket opened on the old release had to move to a new server process.
    assert stats["ws_clients_reconnected"] == stats["ws_clients"], stats
    release = after["app1"]
    assert set(after.values()) == {release}, f"hosts on mixed releases: {after}"
    assert release != before["app1"] and release.startswith(release_version("r2") + "-"), (before, after)
    assert all(link.endswith(f"/releases/{release}") for link in current_links().values())
    names = moderation(applied_migrations())
    assert "0005_report_reviewed_at_body_nullable" in names and "0006_remove_report_body" in names, names
    # The final report names the release.
    assert any(re.search(r"report", block, re.I) and release in block for block in tasks(proc.stdout)[-6:]), \
        tail(proc)
    assert not loadgen.check_sessions(lb_url, sessions)


def test_moderation_zero_and_back_under_load(ansible_playbook, lb_url, sessions, container_ip, release_source,
                                             capsys):
    """`moderation zero` (an app that sessions do not depend on) runs under load, then a normal run restores it."""
    source = release_source("r2")
    release = served_releases(container_ip)["app1"]
    assert release.startswith(release_version("r2") + "-"), "the r2 test did not deploy r2"

    zero, zero_load, seconds = run_under_load(
        ansible_playbook, lb_url, sessions,
        "-e", json.dumps({"django_migrate_targets": ["moderation zero"], "django_project_source": str(source)}),
    )
    names_after_zero = moderation(applied_migrations())
    zero_stats = report("moderation-zero-under-load", capsys, load=zero_load, proc=zero, playbook_seconds=seconds,
                        moderation_applied=names_after_zero)
    # The normal run comes before any assertion: the next test needs r2 fully migrated.
    proc, load, seconds = run_under_load(ansible_playbook, lb_url, sessions, "-e", f"django_project_source={source}")
    names = moderation(applied_migrations())
    stats = report("moderation-reapplied-under-load", capsys, load=load, proc=proc, playbook_seconds=seconds,
                   moderation_applied=names)

    assert zero.returncode == 0, tail(zero)
    assert names_after_zero == [], names_after_zero
    assert_users_unharmed(zero_stats, zero)
    assert proc.returncode == 0, tail(proc)
    assert_users_unharmed(stats, proc)
    assert names[-2:] == ["0005_report_reviewed_at_body_nullable", "0006_remove_report_body"], names
    assert len(names) == 6, names
    assert set(served_releases(container_ip).values()) == {release}
    lost = loadgen.check_sessions(lb_url, sessions)
    assert not lost, f"{len(lost)} users logged out: {dict(list(lost.items())[:5])}"


def test_failing_migration_keeps_the_release_under_load(ansible_playbook, lb_url, sessions, container_ip,
                                                        release_source, capsys):
    """r3's migration fails in the expand phase: the run stops, every host keeps serving r2."""
    before = served_releases(container_ip)
    links = current_links()
    assert len(set(before.values())) == 1 and before["app1"].startswith(release_version("r2") + "-"), before
    assert "0006_remove_report_body" in moderation(applied_migrations()), "r2 is not fully migrated (earlier test)"
    source = release_source("r3")

    proc, load, seconds = run_under_load(ansible_playbook, lb_url, sessions, "-e", f"django_project_source={source}")
    after = served_releases(container_ip)
    names = moderation(applied_migrations())
    stats = report("r3-failing-under-load", capsys, load=load, proc=proc, playbook_seconds=seconds,
                   releases_before=before, releases_after=after, moderation_applied=names)

    assert proc.returncode != 0, tail(proc)
    assert FAILING_MESSAGE in proc.stdout, tail(proc)
    play = play_of(proc.stdout, FAILING_MESSAGE)
    assert play and re.search(r"expand", play, re.I), f"the failure is not in the expand phase ({play}):\n{tail(proc)}"
    assert after == before, f"release changed after a failed migration: {before} -> {after}"
    assert current_links() == links
    assert "0007_fail_on_purpose" not in names, names
    assert_users_unharmed(stats, proc)
    lost = loadgen.check_sessions(lb_url, sessions)
    assert not lost, f"{len(lost)} users logged out: {dict(list(lost.items())[:5])}"


def test_release_failing_its_health_gate_is_rolled_back_under_load(ansible_playbook, lb_url, sessions, container_ip,
                                                                    release_source, capsys):
    """r4 never starts: the first host goes back to r2 (code and configuration), the second is never touched."""
    before = served_releases(container_ip)
    links, previous = current_links(), current_links("previous")
    assert len(set(before.values())) == 1 and before["app1"].startswith(release_version("r2") + "-"), before
    source = release_source("r4")

    proc, load, seconds = run_under_load(
        ansible_playbook, lb_url, sessions,
        "-e", json.dumps({"django_project_source": str(source), "django_health_timeout": 40}),
    )
    after = served_releases(container_ip)
    stats = report("r4-health-gate-rescue-under-load", capsys, load=load, proc=proc, playbook_seconds=seconds,
                   releases_before=before, releases_after=after)

    assert proc.returncode != 0, tail(proc)
    assert "Rolling switch failed on app1" in proc.stdout, tail(proc)
    assert (play_of(proc.stdout, "Rolling switch failed on app1") or "").startswith("PLAY [Switch"), tail(proc)
    # app1 tried r4 (its current link moved) and came back: it answers with r2's release id, which
    # only the configuration rendered again for r2 gives; app2 was never switched.
    served_again = "".join(b for b in tasks(proc.stdout)
                           if b.startswith("TASK [django_app : Restart the application on the release]"))
    assert "changed: [app1]" in served_again, tail(proc)
    assert after == before, f"release changed after a failed switch: {before} -> {after}"
    assert current_links() == links
    assert current_links("previous") == previous, "rollback.yml would not find the release before r2"
    restarts = "".join(b for b in tasks(proc.stdout) if b.startswith("TASK [django_app : Restart the application]"))
    assert "app1" in restarts and "app2" not in restarts, tail(proc)
    assert_users_unharmed(stats, proc)
    lost = loadgen.check_sessions(lb_url, sessions)
    assert not lost, f"{len(lost)} users logged out: {dict(list(lost.items())[:5])}"
