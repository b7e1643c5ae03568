"""``manage.py bundle_sessions`` (stats and login canary) with the cached_db test settings."""

import contextlib
import io
import json
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, TestCase, TransactionTestCase, override_settings
from django.utils import timezone


def run(*args):
    """Run ``bundle_sessions``; stdout must be exactly one JSON document."""
    out, leaked = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(leaked):
        call_command("bundle_sessions", *args, stdout=out, stderr=io.StringIO())
    assert leaked.getvalue() == "", leaked.getvalue()
    return json.loads(out.getvalue())


class CanaryTests(TestCase):
    def test_create_check_delete_round_trip(self):
        created = run("canary", "create")
        self.assertEqual(set(created), {"username", "cookie_name", "session_key", "expire_date"})
        self.assertEqual(created["username"], "bundle-canary")
        self.assertEqual(created["cookie_name"], settings.SESSION_COOKIE_NAME)
        key = created["session_key"]
        # cached_db: in the database and in the sessions cache.
        self.assertTrue(Session.objects.filter(session_key=key).exists())
        self.assertIsNotNone(caches["sessions"].get("django.contrib.sessions.cached_db" + key))
        expire = timezone.datetime.fromisoformat(created["expire_date"])
        self.assertAlmostEqual(
            (expire - timezone.now()).total_seconds(), settings.SESSION_COOKIE_AGE, delta=60
        )
        user = get_user_model().objects.get(username="bundle-canary")
        self.assertFalse(user.has_usable_password())
        self.assertTrue(user.is_active)
        self.assertFalse(user.is_staff)

        self.assertEqual(
            run("canary", "check", "--session-key", key),
            {"authenticated": True, "username": "bundle-canary", "session_key": key, "rotated": False},
        )
        self.assertEqual(run("canary", "delete", "--session-key", key), {"deleted": True})
        self.assertFalse(Session.objects.filter(session_key=key).exists())
        self.assertIsNone(caches["sessions"].get("django.contrib.sessions.cached_db" + key))
        self.assertEqual(run("canary", "check", "--session-key", key)["authenticated"], False)
        self.assertEqual(run("canary", "delete", "--session-key", key), {"deleted": False})

    def test_session_works_for_a_real_request(self):
        key = run("canary", "create", "--username", "probe")["session_key"]
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = key
        self.assertEqual(
            client.get("/whoami", headers={"host": "plain.example"}).json(), {"authenticated": True, "tenant": None}
        )

    def test_create_twice_updates_the_same_user(self):
        User = get_user_model()
        User.objects.create_user("bundle-canary", password="x", is_staff=True)
        first = run("canary", "create")["session_key"]
        second = run("canary", "create")["session_key"]
        self.assertNotEqual(first, second)
        self.assertEqual(User.objects.filter(username="bundle-canary").count(), 1)
        user = User.objects.get(username="bundle-canary")
        self.assertFalse(user.is_staff)
        self.assertFalse(user.has_usable_password())
        # Re-creating keeps the unusable password: earlier canary sessions stay valid.
        self.assertTrue(run("canary", "check", "--session-key", first)["authenticated"])

    def test_unknown_session_is_anonymous(self):
        self.assertEqual(
            run("canary", "check", "--session-key", "nosuchsessionkey0000000000000000"),
            {"authenticated": False, "username": None, "session_key": None, "rotated": False},
        )

    def test_secret_key_fallbacks(self):
        with override_settings(SECRET_KEY="old-secret-key"):
            key = run("canary", "create")["session_key"]
        with override_settings(SECRET_KEY_FALLBACKS=["old-secret-key"]):
            checked = run("canary", "check", "--session-key", key)
        self.assertTrue(checked["authenticated"])
        self.assertTrue(checked["rotated"])  # like django.contrib.auth.get_user: cycled key
        self.assertFalse(Session.objects.filter(session_key=key).exists())
        self.assertEqual(run("canary", "check", "--session-key", checked["session_key"])["rotated"], False)

        with override_settings(SECRET_KEY="another-old-key"):
            stale = run("canary", "create")["session_key"]
        self.assertEqual(run("canary", "check", "--session-key", stale)["authenticated"], False)
        self.assertFalse(Session.objects.filter(session_key=stale).exists())


class StatsTests(TestCase):
    def test_stats_with_locmem_cache(self):
        run("canary", "create")
        Session.objects.create(
            session_key="expired" + "0" * 25, session_data="", expire_date=timezone.now() - timedelta(days=1)
        )
        stats = run("stats")
        self.assertEqual(stats["engine"], "django.contrib.sessions.backends.cached_db")
        self.assertEqual(stats["table"], True)
        self.assertEqual(stats["database_active"], 1)
        self.assertIsNone(stats["database_since"])
        self.assertIsNone(stats["cache_keys"])  # locmem is not django-redis
        self.assertIsNone(stats["cache_error"])
        self.assertEqual(stats["cache_alias"], "sessions")
        timezone.datetime.fromisoformat(stats["now"])

        past = (timezone.now() - timedelta(days=2)).isoformat()
        self.assertEqual(run("stats", "--since", past)["database_since"], 2)
        future = (timezone.now() + timedelta(days=30)).replace(tzinfo=None).isoformat()
        self.assertEqual(run("stats", "--since", future)["database_since"], 0)
        with self.assertRaisesMessage(CommandError, "ISO 8601"):
            run("stats", "--since", "yesterday")

    def test_unreachable_redis_is_reported_not_fatal(self):
        unreachable = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
        with override_settings(CACHES={**settings.CACHES, "sessions": unreachable}):
            stats = run("stats")
        self.assertIsNone(stats["cache_keys"])
        self.assertEqual(stats["cache_error"], "ConnectionError")
        self.assertEqual(stats["database_active"], 0)


class MissingTableTests(TransactionTestCase):
    def setUp(self):
        call_command("migrate", "sessions", "zero", verbosity=0, stdout=io.StringIO())

    def tearDown(self):
        call_command("migrate", "sessions", verbosity=0, stdout=io.StringIO())

    def test_fresh_database(self):
        stats = run("stats", "--since", "2020-01-01T00:00:00Z")
        self.assertEqual((stats["table"], stats["database_active"], stats["database_since"]), (False, None, None))
        with self.assertRaisesMessage(CommandError, "does not exist yet"):
            run("canary", "create")
