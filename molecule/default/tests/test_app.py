"""Behaviour of roles/django_app and roles/loadbalancer on the converged sandbox.

Real HTTP (requests) and WebSocket (websockets) clients go through the load
balancer published on 127.0.0.1; the data tier is checked on db1/redis1.
Passwords reach psql/redis-cli through environment variables, never argv.

The sandbox inventory sets django_demo_superuser_enabled and django_tenants
(tenant-a.localhost -> a, tenant-b.localhost -> b). BUNDLE_APP_TEST_EXTRA_VARS
may name an extra-vars file passed to every ansible-playbook run of this suite.
"""

import json
import os
import re
import time

import pytest
import requests
from websockets.sync.client import connect as ws_connect

import sandbox

APP = "bundle_sample"
ROOT = f"/srv/{APP}"
SETTINGS = f"{ROOT}/shared/conf/bundle_deploy_settings.py"
TENANT_A = "tenant-a.localhost"
TENANT_B = "tenant-b.localhost"
SESSION_KEY_RE = re.compile(r"^[a-z0-9]{32}$")


def _extra_vars():
    path = os.environ.get("BUNDLE_APP_TEST_EXTRA_VARS")
    return ["-e", f"@{path}"] if path else []


@pytest.fixture(scope="module")
def demo_password(ansible_var):
    return ansible_var("app1", "vault_django_demo_superuser_password")


@pytest.fixture(scope="module")
def login(lb_url, demo_password):
    """login(host) -> session key of the demo superuser logged in through the form."""

    def run(host="127.0.0.1"):
        web = requests.Session()
        headers = {"Host": host}
        page = web.get(f"{lb_url}/accounts/login/", headers=headers, timeout=10)
        assert page.status_code == 200, page.text[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        assert web.cookies.get("csrftoken")
        answer = web.post(
            f"{lb_url}/accounts/login/",
            data={"username": "demo", "password": demo_password, "csrfmiddlewaretoken": token, "next": "/whoami"},
            headers=headers,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, (answer.status_code, answer.text[:500])
        session_key = web.cookies.get("sessionid")
        assert session_key and SESSION_KEY_RE.match(session_key)
        return session_key

    return run


def whoami(lb_url, session_key, host="127.0.0.1"):
    answer = requests.get(f"{lb_url}/whoami", headers={"Host": host, "Cookie": f"sessionid={session_key}"},
                          timeout=10)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


def ws_whoami(lb_url, session_key):
    url = lb_url.replace("http://", "ws://") + "/ws/whoami/"
    headers = {"Cookie": f"sessionid={session_key}", "Origin": lb_url}
    with ws_connect(url, additional_headers=headers, open_timeout=10) as ws:
        return json.loads(ws.recv(timeout=10))


def redis_keys(ansible_var, purpose, pattern):
    instances = {i["name"]: i for i in ansible_var("redis1", "redis_instances")}
    instance = ansible_var("redis1", "redis_purposes")[purpose]["instance"]
    proc = sandbox.docker_exec(
        "redis1",
        ["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(instances[instance]["port"]),
         "--user", "admin", "--scan", "--pattern", pattern],
        env={"REDISCLI_AUTH": ansible_var("redis1", "redis_admin_password")},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def current_release(host):
    return host.check_output(f"readlink -f {ROOT}/current").rsplit("/", 1)[-1]


def test_login_form_then_whoami_over_http_and_websocket(lb_url, login):
    session_key = login()
    me = whoami(lb_url, session_key)
    assert me["authenticated"] is True and me["username"] == "demo"
    assert whoami(lb_url, "0" * 32)["authenticated"] is False
    ws_me = ws_whoami(lb_url, session_key)
    assert ws_me["authenticated"] is True and ws_me["username"] == "demo"


def test_session_is_in_postgresql_and_sessions_redis_only(lb_url, login, host_of, ansible_var):
    session_key = login()
    assert SESSION_KEY_RE.match(session_key)
    database = ansible_var("db1", "postgresql_app_database")
    rows = host_of("db1").check_output(
        f"runuser -u postgres -- psql -d {database} -Atc "
        f"\"SELECT count(*) FROM django_session WHERE session_key = '{session_key}'\""
    )
    assert rows.strip() == "1"
    assert whoami(lb_url, session_key)["authenticated"] is True  # read through the cache
    in_sessions = redis_keys(ansible_var, "sessions", f"*django.contrib.sessions.cached_db{session_key}")
    assert len(in_sessions) == 1, in_sessions
    assert redis_keys(ansible_var, "cache", f"*{session_key}*") == []


def test_cookie_replayed_on_another_tenant_is_anonymous(lb_url, login):
    session_key = login(TENANT_A)
    mine = whoami(lb_url, session_key, host=TENANT_A)
    assert mine["authenticated"] is True and mine["tenant"] == "a"
    other = whoami(lb_url, session_key, host=TENANT_B)
    assert other["authenticated"] is False and other["tenant"] == "b"


def test_settings_file_is_private_to_root_and_app_group(host_of):
    for name in ("app1", "app2"):
        host = host_of(name)
        settings = host.file(SETTINGS)
        assert settings.mode == 0o640 and settings.user == "root" and settings.group == APP
        assert host.file(f"{ROOT}/shared/conf/environment").mode == 0o640
        assert host.run(f"runuser -u nobody -- cat {SETTINGS}").rc != 0
        assert host.run(f"runuser -u {APP} -- cat {SETTINGS}").rc == 0


def test_unit_enabled_active_and_health_reports_release(host_of, container_ip, lb_url):
    releases = set()
    for name in ("app1", "app2"):
        host = host_of(name)
        service = host.service(f"{APP}.service")
        assert service.is_enabled and service.is_running
        release = current_release(host)
        health = requests.get(f"http://{container_ip(name)}:8000/healthz", headers={"Host": "localhost"}, timeout=10)
        assert health.status_code == 200
        assert health.json() == {"release": release, "database": True, "cache": True}
        releases.add(release)
    assert len(releases) == 1
    assert requests.get(f"{lb_url}/healthz", timeout=10).json()["release"] in releases


def test_each_request_is_logged_once_by_the_load_balancer(lb_url, host_of):
    # django_access_log defaults to off: HAProxy's line is the request log.
    marker = f"logcheck{time.time_ns()}"
    answer = requests.get(f"{lb_url}/whoami?{marker}", headers={"Host": "127.0.0.1"}, timeout=10)
    assert answer.status_code == 200
    lb1 = host_of("lb1")
    sandbox.wait_until(lambda: marker in lb1.run("journalctl -t haproxy --since -10min --no-pager -o cat").stdout,
                       15, "the request is not in the load balancer's log")
    for name in ("app1", "app2"):
        assert marker not in host_of(name).check_output(f"journalctl -u {APP} --since -10min --no-pager -o cat")


def test_manage_wrapper_runs_as_app_user(host_of):
    out = host_of("app1").check_output("django-manage migrate --plan")
    assert "No planned migration operations" in out
    who = host_of("app1").check_output("django-manage shell -c 'import getpass; print(getpass.getuser())'")
    assert who.strip().splitlines()[-1] == APP


def test_minimal_startproject_deploys_as_second_app(repo, ansible_playbook, host_of, container_ip, tmp_path):
    app1 = host_of("app1")
    extra = {
        "django_app_name": "minimal",
        "django_bind_port": 8100,
        "django_manage_wrapper": "/usr/local/bin/minimal-manage",
        "django_project_source": str(repo / "tests/fixtures/minimal_project"),
        "django_project_requirements": str(repo / "sample_project/requirements.txt"),
        "django_base_settings_module": "minimal_project.settings",
        "django_asgi_application": "minimal_project.asgi:application",
        "django_health_path": "/admin/login/",
        "django_health_check_release": False,
        "django_demo_superuser_enabled": False,
        # A second application on the app host that no load balancer serves,
        # with no login-only page for a canary.
        "django_loadbalancers": [],
        "django_canary_enabled": False,
    }
    (tmp_path / "minimal.json").write_text(json.dumps(extra))
    try:
        run = ansible_playbook("playbooks/app.yml", *_extra_vars(), "-e", f"@{tmp_path / 'minimal.json'}",
                               "--limit", "app1:databases:redis_servers")
        assert run.returncode == 0, run.stdout[-4000:]
        page = requests.get(f"http://{container_ip('app1')}:8100/admin/login/", headers={"Host": "localhost"},
                            timeout=10)
        assert page.status_code == 200 and "csrfmiddlewaretoken" in page.text
        assert app1.service("minimal.service").is_running
        assert app1.service(f"{APP}.service").is_running
        # One release only: rollback refuses readably and changes nothing.
        refused = ansible_playbook("playbooks/rollback.yml", *_extra_vars(), "-e", f"@{tmp_path / 'minimal.json'}",
                                   "--limit", "app1:databases:redis_servers")
        assert refused.returncode != 0
        assert "no previous release of minimal to roll back to" in refused.stdout, refused.stdout[-3000:]
        assert app1.service("minimal.service").is_running
    finally:
        app1.run("systemctl disable --now minimal.service; rm -f /etc/systemd/system/minimal.service; "
                 "systemctl daemon-reload; rm -rf /srv/minimal /usr/local/bin/minimal-manage; userdel minimal")
    assert not app1.file("/srv/minimal").exists


def test_check_mode_on_converged_hosts_changes_nothing(ansible_playbook):
    run = ansible_playbook("playbooks/app.yml", *_extra_vars(), "--check", "--diff")
    assert run.returncode == 0, run.stdout[-4000:]
    recap = run.stdout[run.stdout.rindex("PLAY RECAP"):]
    assert re.findall(r"changed=(\d+)", recap) and set(re.findall(r"changed=(\d+)", recap)) == {"0"}, recap


def test_rollback_switches_back_to_the_previous_release(ansible_playbook, host_of, container_ip, lb_url):
    hosts = [host_of("app1"), host_of("app2")]
    original = current_release(hosts[0])
    other = f"{original}-rollback-test"
    run = ansible_playbook("playbooks/app.yml", *_extra_vars(), "-e", f"django_release_id={other}")
    assert run.returncode == 0, run.stdout[-4000:]
    assert [current_release(h) for h in hosts] == [other, other]
    assert requests.get(f"{lb_url}/healthz", timeout=10).json()["release"] == other

    back = ansible_playbook("playbooks/rollback.yml", *_extra_vars())
    assert back.returncode == 0, back.stdout[-4000:]
    assert [current_release(h) for h in hosts] == [original, original]
    for name, host in zip(("app1", "app2"), hosts):
        assert host.check_output(f"readlink {ROOT}/previous").endswith(f"/releases/{other}")
        health = requests.get(f"http://{container_ip(name)}:8000/healthz", headers={"Host": "localhost"}, timeout=10)
        assert health.json()["release"] == original
    assert requests.get(f"{lb_url}/healthz", timeout=10).json()["release"] == original
