"""SECRET_KEY rotation through playbooks/rotate_secret_key.yml under load.

50 logged-in users keep requesting /whoami and hold WebSocket connections
through the load balancer (loadgen.Load, which keeps the cookie a Set-Cookie
gives it, like a browser) while the playbook makes two rolling passes. Nobody
may be logged out, and the ``-v`` output must not contain any secret, the new
key included.

The hosts are left on the new key (old one in the fallbacks); the suites that
run later deploy the inventory's key again. The file name sorts after
test_rolling.py on purpose.
"""

import json
import pathlib
import secrets
import time

import pytest

import loadgen
import sandbox
from releases import current_release_args

RESULTS = pathlib.Path(__file__).resolve().parents[3] / ".cache" / "test-results"
PASSWORD = "rotation-Secret-42"
CANARY = "bundle-canary"
_CANARY_SESSIONS = f"""
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
user = get_user_model().objects.filter(username={CANARY!r}).first()
uid = str(user.pk) if user else None
print("CANARY_SESSIONS", sum(1 for s in Session.objects.all() if uid and s.get_decoded().get("_auth_user_id") == uid))
"""


def canary_sessions():
    """Number of session rows (any key, any expiry) that belong to the deploy canary."""
    return sandbox.django_shell(_CANARY_SESSIONS, "CANARY_SESSIONS")


@pytest.fixture(scope="module")
def sessions(lb_url):
    return loadgen.logged_in_users(lb_url, "rotation", PASSWORD)


def test_short_new_key_is_refused_before_any_change(ansible_playbook):
    run = ansible_playbook("playbooks/rotate_secret_key.yml", "-e", '{"django_secret_key_next": "too-short"}')
    assert run.returncode != 0
    assert "Set django_secret_key_next (50+ characters" in run.stdout, run.stdout[-3000:]
    recap = run.stdout[run.stdout.rindex("PLAY RECAP"):]
    assert "changed=0" in recap and "changed=1" not in recap, recap
    assert "too-short" not in run.stdout


def test_rotation_under_load_logs_nobody_out_and_leaks_nothing(sessions, lb_url, ansible_playbook, secret_values,
                                                             tmp_path):
    # Keep the release that is deployed (test_rolling.py leaves a fixture
    # release): the rotation changes the key, not the code.
    release = current_release_args(tmp_path)
    new_key = "rotated-" + secrets.token_urlsafe(48)
    values = dict(secret_values)
    values["new key"] = new_key
    canaries_before = canary_sessions()  # failed runs of earlier tests may have left some
    with loadgen.Load(lb_url, sessions) as load:
        started = time.monotonic()
        run = ansible_playbook("playbooks/rotate_secret_key.yml", "-v", *release,
                               "-e", json.dumps({"django_secret_key_next": new_key}))
        seconds = round(time.monotonic() - started, 1)
        time.sleep(3)
        stats = load.stats()
        current = load.current_sessions()
    data = {"test": "secret-key-rotation", "playbook_rc": run.returncode, "playbook_seconds": seconds,
            **{k: v for k, v in stats.items() if k != "examples"}}
    print(f"\n[rotation] {json.dumps(data, sort_keys=True)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"rotation-{sandbox.PREFIX}.json").write_text(json.dumps({**data, "examples": stats["examples"]}, indent=2))
    assert run.returncode == 0, run.stdout[-4000:]
    leaked = [name for name, value in values.items() if value and value in run.stdout]
    assert not leaked, f"ansible-playbook -v output shows {leaked}"
    assert stats["failures"] == 0, stats
    assert stats["logouts"] == 0 and stats["ws_logouts"] == 0, stats
    # Sessions signed with the old key were re-signed with the new one.
    assert stats["cookie_updates"] > 0, stats
    lost = loadgen.check_sessions(lb_url, current)
    assert not lost, f"{len(lost)} users logged out after the rotation: {dict(list(lost.items())[:3])}"
    # Each pass logged its canary out, under the key it had at the end (a
    # session authenticated by a fallback key moves to a new key).
    assert canary_sessions() <= canaries_before
