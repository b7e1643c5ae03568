"""Switching a running site to ``bundle_runtime.sessions`` logs nobody out (issue 7).

One test, two ``playbooks/app.yml`` runs on the converged sandbox:

1. the original settings (``django.contrib.sessions.backends.db`` with
   ``SESSION_SAVE_EVERY_REQUEST = True``); users log in through the load
   balancer's login form (the demo superuser and two test users, one on a
   tenant host), and one session is created under plain ``cached_db`` (what a
   login under that engine stores, in PostgreSQL and the sessions Redis);
2. the role's defaults (``bundle_runtime.sessions``, no save-every-request):
   every user is still authenticated, as themselves, over WebSocket and HTTP;
   the WebSocket only reads the session; the first HTTP request refreshes a
   session (row expiry forward, stamp written, cookie re-sent) and the second
   one, within the threshold, writes nothing.

The second run happens in ``finally``: the sandbox is left on the defaults
even when the test fails. Both runs redeploy the release that is current
(``test_rolling.py`` runs before this module and leaves the r2 fixture), so
only the settings change.
"""

import json
import socket
import time

import requests
from websockets.sync.client import connect as ws_connect

import loadgen
import sandbox
from releases import current_release_args

PLAYBOOK = "playbooks/app.yml"
ORIGINAL = {"django_session_engine": "django.contrib.sessions.backends.db", "django_session_save_every_request": True}
PASSWORD = "session-Engine-test-7"
STAMP = "_bundle_refreshed_at"


def manage_shell(code, **env):
    """Run ``django-manage shell -c code`` on app1; return the JSON printed after ``SE_OUT ``."""
    return sandbox.django_shell(code, "SE_OUT", env=env)


_SETTINGS = """
import json
from django.conf import settings as s
print("SE_OUT " + json.dumps([s.SESSION_ENGINE, s.SESSION_SAVE_EVERY_REQUEST,
                               getattr(s, "BUNDLE_SESSION_REFRESH_SECONDS", None)]))
"""

# Exactly what django.contrib.auth.login stores, saved by plain cached_db
# (PostgreSQL row + entry in the sessions Redis).
_CACHED_DB_LOGIN = """
import json, os
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
user = get_user_model().objects.get(username=os.environ["SE_USER"])
store = import_module("django.contrib.sessions.backends.cached_db").SessionStore()
store[SESSION_KEY] = user._meta.pk.value_to_string(user)
store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.save()
print("SE_OUT " + json.dumps(store.session_key))
"""

_ROWS = """
import json, os
from django.contrib.sessions.models import Session
rows = {}
for row in Session.objects.filter(session_key__in=os.environ["SE_KEYS"].split(",")):
    rows[row.session_key] = {"expire": row.expire_date.timestamp(),
                             "stamp": row.get_decoded().get("_bundle_refreshed_at")}
print("SE_OUT " + json.dumps(rows))
"""


def session_rows(users):
    return manage_shell(_ROWS, SE_KEYS=",".join(u.sessionid for u in users))


def whoami(lb_url, user):
    answer = requests.get(f"{lb_url}/whoami", headers={"Host": user.host, "Cookie": f"sessionid={user.sessionid}"},
                          timeout=20)
    assert answer.status_code == 200, (user.username, answer.status_code, answer.text[:300])
    return answer.json(), answer.headers.get("Set-Cookie", "")


def ws_whoami(lb_url, user):
    port = int(lb_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    with ws_connect(
        f"ws://{user.host}:{port}/ws/whoami/",
        sock=sock,
        origin=f"http://{user.host}:{port}",
        additional_headers={"Cookie": f"sessionid={user.sessionid}"},
        open_timeout=20,
    ) as ws:
        return json.loads(ws.recv(timeout=20))


def tail(proc):
    return proc.stdout[-6000:]


def expected(user):
    return {"authenticated": True, "username": user.username, "tenant": user.tenant}


def test_switch_from_db_engine_keeps_everyone_logged_in(ansible_playbook, ansible_var, lb_url, tmp_path, capsys):
    release_args = current_release_args(tmp_path)
    timings = {}
    started = time.monotonic()
    try:
        first = ansible_playbook(PLAYBOOK, *release_args, "-e", json.dumps(ORIGINAL))
        timings["original_deploy"] = round(time.monotonic() - started, 1)
        assert first.returncode == 0, tail(first)
        assert manage_shell(_SETTINGS) == ["django.contrib.sessions.backends.db", True, 300]

        names = loadgen.create_users("se-engine-", count=3, password=PASSWORD)
        demo_password = ansible_var("app1", "vault_django_demo_superuser_password")
        users = [
            loadgen.login(lb_url, "demo", demo_password, host=loadgen.DEFAULT_HOST),
            loadgen.login(lb_url, names[0], PASSWORD, host=loadgen.DEFAULT_HOST),
            loadgen.login(lb_url, names[1], PASSWORD, host=loadgen.TENANT_HOST),
        ]
        cached_key = manage_shell(_CACHED_DB_LOGIN, SE_USER=names[2])
        users.append(loadgen.UserSession(username=names[2], host=loadgen.DEFAULT_HOST, sessionid=cached_key,
                                         tenant=None))
        assert users[2].tenant == "a" and users[0].tenant is None
        for user in users:  # sanity, under the original engine
            assert whoami(lb_url, user)[0] == expected(user)
    finally:
        switched = time.monotonic()
        second = ansible_playbook(PLAYBOOK, *release_args)
        timings["default_deploy"] = round(time.monotonic() - switched, 1)
    assert second.returncode == 0, tail(second)
    assert manage_shell(_SETTINGS) == ["bundle_runtime.sessions", False, 300]

    before = session_rows(users)
    assert set(before) == {u.sessionid for u in users}
    assert all(row["stamp"] is None for row in before.values()), before

    # WebSocket: authenticated as themselves; the WebSocket path only reads.
    for user in users:
        assert ws_whoami(lb_url, user) == expected(user), user
    assert session_rows(users) == before

    # HTTP: authenticated; the first request refreshes the unstamped session
    # (row expiry forward, stamp, cookie re-sent)...
    for user in users:
        me, set_cookie = whoami(lb_url, user)
        assert me == expected(user), user
        assert f"sessionid={user.sessionid}" in set_cookie and "Max-Age=86400" in set_cookie, (user, set_cookie)
    refreshed = session_rows(users)
    for key, row in refreshed.items():
        assert row["expire"] > before[key]["expire"], (key, before[key], row)
        assert row["stamp"] is not None and abs(row["expire"] - 86400 - row["stamp"]) < 5, row
    # ...the second, within BUNDLE_SESSION_REFRESH_SECONDS, writes nothing.
    for user in users:
        me, set_cookie = whoami(lb_url, user)
        assert me == expected(user), user
        assert "sessionid=" not in set_cookie, (user, set_cookie)
        assert ws_whoami(lb_url, user) == expected(user), user
    assert session_rows(users) == refreshed

    with capsys.disabled():
        print(f"\nsession engine switch: {json.dumps(timings)}, users={len(users)}")
