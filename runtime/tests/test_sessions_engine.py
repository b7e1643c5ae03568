"""``bundle_runtime.sessions``: cached_db refreshed when due instead of on every request.

Time is simulated: :class:`FakeClock` patches ``time.time`` (stamps, cookie
expiry, locmem cache TTLs) and ``django.utils.timezone.now`` (database
``expire_date``) together. Small ages: ``SESSION_COOKIE_AGE = 1000``,
``BUNDLE_SESSION_REFRESH_SECONDS = 100``, so the documented bound is
"an idle user expires between 900 and 1000 s after their last request".
"""

import datetime
from importlib import import_module
from unittest import mock

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from django.conf import settings
from django.contrib.auth import get_user_model, logout
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.test import Client, TestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path

from bundle_runtime import sessions as engine
from tests import urls as base_urls
from tests.ws import first_message

PASSWORD = "correct horse battery staple"
AGE = 1000
REFRESH = 100
BUNDLE = "bundle_runtime.sessions"
DB = "django.contrib.sessions.backends.db"
CACHED_DB = "django.contrib.sessions.backends.cached_db"
START = 1_700_000_000.0


# --- views and routes used by these tests (ROOT_URLCONF = this module) --------


def s_whoami(request):
    user = request.user
    return JsonResponse({"authenticated": user.is_authenticated, "username": user.get_username() or None})


def s_set(request):
    request.session[request.GET["key"]] = request.GET["value"]
    return JsonResponse({"ok": True})


def s_keys(request):
    return JsonResponse({"keys": sorted(request.session.keys())})


def s_expiry(request):
    request.session.set_expiry(int(request.GET["seconds"]))
    return JsonResponse({"ok": True})


def s_untouched(request):
    """Never reads request.session nor request.user."""
    return HttpResponse("ok")


def s_logout(request):
    logout(request)
    return JsonResponse({"ok": True})


urlpatterns = list(base_urls.urlpatterns) + [
    path("s/whoami", s_whoami),
    path("s/set", s_set),
    path("s/keys", s_keys),
    path("s/expiry", s_expiry),
    path("s/untouched", s_untouched),
    path("s/logout", s_logout),
]


class UserConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json({"authenticated": user.is_authenticated, "username": user.get_username() or None})


def ws_app():
    # What a project writes; bundle_runtime rebinds channels.auth.get_user.
    return AuthMiddlewareStack(URLRouter([path("ws/whoami/", UserConsumer.as_asgi())]))


async def ws_whoami(cookie):
    return await first_message(ws_app(), "/ws/whoami/", "testserver", cookie)


# --- helpers ------------------------------------------------------------------


class FakeClock:
    """Simulated wall clock for time.time() and timezone.now()."""

    def __init__(self, start=START):
        self.now = start

    def time(self):
        return self.now

    def datetime(self):
        return datetime.datetime.fromtimestamp(self.now, tz=datetime.UTC)

    def advance(self, seconds):
        self.now += seconds

    def __enter__(self):
        self._patches = [mock.patch("time.time", self.time), mock.patch("django.utils.timezone.now", self.datetime)]
        for patch in self._patches:
            patch.start()
        return self

    def __exit__(self, *exc):
        for patch in reversed(self._patches):
            patch.stop()


def session_writes(queries):
    """INSERT/UPDATE statements on the session table among captured queries."""
    return [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE")) and "django_session" in q["sql"]
    ]


def session_reads(queries):
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT") and "django_session" in q["sql"]]


def login(client, username="dave"):
    response = client.post("/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def set_cookie(response):
    """The session Set-Cookie morsel of a response, or None."""
    morsel = response.cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel if morsel is not None and morsel.value else None


def expire_ts(session_key):
    return Session.objects.get(session_key=session_key).expire_date.timestamp()


def stored_data(session_key):
    return Session.objects.get(session_key=session_key).get_decoded()


ENGINE_SETTINGS = dict(
    SESSION_ENGINE=BUNDLE,
    SESSION_COOKIE_AGE=AGE,
    BUNDLE_SESSION_REFRESH_SECONDS=REFRESH,
    SESSION_SAVE_EVERY_REQUEST=False,
    BUNDLE_TENANTS={},
    ROOT_URLCONF="tests.test_sessions_engine",
)


@override_settings(**ENGINE_SETTINGS)
class RefreshTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        get_user_model().objects.create_user("dave", password=PASSWORD)

    def setUp(self):
        self.clock = FakeClock()
        self.clock.__enter__()
        self.addCleanup(self.clock.__exit__)

    def whoami(self, client=None):
        return (client or self.client).get("/s/whoami").json()

    def active_user_survives(self, gaps, duration=3 * AGE):
        """Log in, then requests separated by ``gaps`` (cycled) for ``duration`` s.

        Returns (still logged in, session writes, requests).
        """
        login(self.client)
        writes = requests = elapsed = 0
        while elapsed < duration:
            gap = gaps[requests % len(gaps)]
            self.clock.advance(gap)
            elapsed += gap
            with CaptureQueriesContext(connection) as queries:
                result = self.whoami()
            requests += 1
            writes += len(session_writes(queries))
            if result != {"authenticated": True, "username": "dave"}:
                return False, writes, requests
        return True, writes, requests

    def test_active_user_stays_logged_in_across_several_cookie_ages(self):
        ok, writes, requests = self.active_user_survives(gaps=[40])
        self.assertTrue(ok)
        # 3000 s of activity, one write per >= 100 s (every 3rd request), not 75.
        self.assertEqual(requests, 75)
        self.assertEqual(writes, 25)

    def test_worst_case_gaps_inside_the_bound_stay_logged_in(self):
        # A request just before the threshold (no write), then a gap of
        # SESSION_COOKIE_AGE - threshold: the session is 999 s old, still alive.
        ok, writes, requests = self.active_user_survives(gaps=[REFRESH - 1, AGE - REFRESH])
        self.assertTrue(ok)
        self.assertEqual(writes, requests // 2)

    @override_settings(SESSION_ENGINE=CACHED_DB)
    def test_control_plain_cached_db_without_save_every_request_logs_active_user_out(self):
        """Why the engine exists: the same activity with plain cached_db ends in a logout."""
        ok, writes, _requests = self.active_user_survives(gaps=[40])
        self.assertFalse(ok)
        self.assertEqual(writes, 0)

    def test_request_that_never_reads_the_session_still_slides_the_window(self):
        login(self.client)
        for _ in range(30):  # 3000 s of requests to a view ignoring the session
            self.clock.advance(100)
            response = self.client.get("/s/untouched")
            self.assertEqual(response.status_code, 200)
            self.assertIsNotNone(set_cookie(response), "refresh due at every 100 s step")
        self.assertEqual(self.whoami(), {"authenticated": True, "username": "dave"})

    def probe_after_idle(self, last_request, idle):
        """Login at 0, one request at ``last_request``, then idle; is a request ``idle`` s later logged in?"""
        self.clock.now = START
        client = Client()
        key = login(client)
        self.clock.advance(last_request)
        self.assertTrue(self.whoami(client)["authenticated"])
        expiry = expire_ts(key) - self.clock.now
        # The documented bound, on the stored expiry itself.
        self.assertGreaterEqual(expiry, AGE - REFRESH)
        self.assertLessEqual(expiry, AGE)
        self.clock.advance(idle)
        return self.whoami(client)["authenticated"]

    def test_idle_user_expires_within_the_documented_bound(self):
        for last_request in (0, 1, REFRESH - 1, REFRESH, REFRESH + 1, 2 * REFRESH - 1, 2 * REFRESH):
            with self.subTest(last_request=last_request):
                # Still logged in just before the lower bound, whatever the phase...
                self.assertTrue(self.probe_after_idle(last_request, AGE - REFRESH - 1))
                # ...logged out (database and cache) just after the upper bound.
                self.assertFalse(self.probe_after_idle(last_request, AGE + 1))
        # The lower bound is reached: last request just before a refresh was due.
        self.assertFalse(self.probe_after_idle(REFRESH - 1, AGE - REFRESH + 2))

    def test_fresh_session_is_not_written_and_cookie_not_resent(self):
        key = login(self.client)
        cache_key = engine.KEY_PREFIX + key
        cached_before = caches["sessions"].get(cache_key)
        for _ in range(REFRESH // 10 - 1):  # 9 requests in 90 s
            self.clock.advance(10)
            with CaptureQueriesContext(connection) as queries, mock.patch.object(
                engine.SessionStore, "save", autospec=True, side_effect=engine.SessionStore.save
            ) as save:
                response = self.client.get("/s/whoami")
            self.assertEqual(response.json()["authenticated"], True)
            self.assertEqual(session_writes(queries), [])
            self.assertEqual(session_reads(queries), [], "read from the cache")
            save.assert_not_called()
            self.assertIsNone(set_cookie(response))
        self.assertEqual(caches["sessions"].get(cache_key), cached_before)
        self.assertEqual(expire_ts(key), START + AGE)

    def test_refresh_moves_cookie_and_database_expiry_forward(self):
        key = login(self.client)
        self.clock.advance(REFRESH + 20)
        with CaptureQueriesContext(connection) as queries:
            response = self.client.get("/s/whoami")
        morsel = set_cookie(response)
        self.assertIsNotNone(morsel)
        self.assertEqual(morsel.value, key)
        self.assertEqual(int(morsel["max-age"]), AGE)
        expires = datetime.datetime.strptime(morsel["expires"], "%a, %d %b %Y %H:%M:%S GMT")
        self.assertEqual(expires.replace(tzinfo=datetime.UTC).timestamp(), START + REFRESH + 20 + AGE)
        self.assertEqual(len(session_writes(queries)), 1)
        self.assertEqual(expire_ts(key), START + REFRESH + 20 + AGE)
        self.assertEqual(stored_data(key)[engine.REFRESHED_AT_KEY], START + REFRESH + 20)
        self.assertEqual(
            caches["sessions"].get(engine.KEY_PREFIX + key)[engine.REFRESHED_AT_KEY], START + REFRESH + 20
        )
        # The next request within the threshold writes nothing.
        self.clock.advance(REFRESH - 1)
        with CaptureQueriesContext(connection) as queries:
            response = self.client.get("/s/whoami")
        self.assertIsNone(set_cookie(response))
        self.assertEqual(session_writes(queries), [])

    def test_modified_session_is_written_at_once(self):
        key = login(self.client)
        self.clock.advance(5)
        with CaptureQueriesContext(connection) as queries:
            response = self.client.get("/s/set?key=colour&value=blue")
        self.assertEqual(len(session_writes(queries)), 1)
        self.assertIsNotNone(set_cookie(response))
        self.assertEqual(stored_data(key)["colour"], "blue")
        self.assertEqual(caches["sessions"].get(engine.KEY_PREFIX + key)["colour"], "blue")
        self.assertEqual(expire_ts(key), START + 5 + AGE)
        # Another worker with a cold cache sees it too.
        caches["sessions"].clear()
        self.assertEqual(self.client.get("/s/keys").json()["keys"], ["_auth_user_backend", "_auth_user_hash", "_auth_user_id", "colour"])

    def test_anonymous_visitor_gets_no_session(self):
        for cookie in (None, "x" * 32, "short"):
            with self.subTest(cookie=cookie):
                client = Client()
                if cookie:
                    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
                with CaptureQueriesContext(connection) as queries:
                    whoami = client.get("/s/whoami")
                    untouched = client.get("/s/untouched")
                self.assertEqual(whoami.json()["authenticated"], False)
                self.assertIsNone(set_cookie(whoami))
                self.assertIsNone(set_cookie(untouched))
                self.assertEqual(session_writes(queries), [])
        self.assertEqual(Session.objects.count(), 0)

    def test_logout_deletes_the_session(self):
        key = login(self.client)
        self.clock.advance(REFRESH * 2)  # refresh due: must not resurrect it
        response = self.client.get("/s/logout")
        self.assertEqual(response.cookies[settings.SESSION_COOKIE_NAME].value, "")
        self.assertFalse(Session.objects.filter(session_key=key).exists())
        self.assertIsNone(caches["sessions"].get(engine.KEY_PREFIX + key))
        self.assertEqual(Session.objects.count(), 0)

    def test_set_expiry_caps_the_threshold_and_is_honoured(self):
        key = login(self.client)
        self.client.get("/s/expiry?seconds=60")
        self.assertEqual(expire_ts(key), START + 60)
        # Threshold capped to 30 s (half of 60): 25 s gaps for 10 minutes.
        for _ in range(24):
            self.clock.advance(25)
            response = self.client.get("/s/whoami")
            self.assertTrue(response.json()["authenticated"])
            if set_cookie(response):
                self.assertEqual(int(set_cookie(response)["max-age"]), 60)
        self.assertEqual(engine.SessionStore(key).get_expiry_age(), 60)
        self.assertGreaterEqual(expire_ts(key) - self.clock.now, 30)
        self.assertLessEqual(expire_ts(key) - self.clock.now, 60)
        # Idle for 61 s: gone.
        self.clock.advance(61)
        self.assertFalse(self.whoami()["authenticated"])

    def test_row_deleted_behind_the_cache_is_not_resurrected(self):
        """Logout during a sessions-Redis outage left a cached copy: the refresh drops it."""
        key = login(self.client)
        Session.objects.filter(session_key=key).delete()
        self.clock.advance(REFRESH)
        response = self.client.get("/s/whoami")
        self.assertEqual(response.status_code, 400)  # SessionInterrupted, as Django does
        self.assertIsNone(caches["sessions"].get(engine.KEY_PREFIX + key))
        self.assertFalse(self.whoami()["authenticated"])
        self.assertEqual(Session.objects.count(), 0)

    async def test_async_view_refreshes_through_aload(self):
        await self.async_client.post("/login", {"username": "dave", "password": PASSWORD})
        key = self.async_client.cookies[settings.SESSION_COOKIE_NAME].value
        self.clock.advance(5)
        response = await self.async_client.get("/awhoami")
        self.assertTrue(response.json()["authenticated"])
        self.assertIsNone(set_cookie(response))
        self.clock.advance(REFRESH)
        response = await self.async_client.get("/awhoami")
        self.assertTrue(response.json()["authenticated"])
        self.assertEqual(set_cookie(response).value, key)
        session = await Session.objects.aget(session_key=key)
        self.assertEqual(session.expire_date.timestamp(), START + 5 + REFRESH + AGE)


@override_settings(**ENGINE_SETTINGS)
class StoreSemanticsTests(TestCase):
    """The stamp is storage metadata, never session data."""

    def test_stamp_is_invisible_and_emptiness_unchanged(self):
        store = engine.SessionStore()
        self.assertTrue(store.is_empty())
        self.assertFalse(store.modified)
        store["a"] = 1
        store.save()
        key = store.session_key
        self.assertEqual(list(store.keys()), ["a"])
        self.assertFalse(store.is_empty())
        self.assertIn(engine.REFRESHED_AT_KEY, stored_data(key))

        loaded = engine.SessionStore(key)
        self.assertEqual(dict(loaded.items()), {"a": 1})
        self.assertFalse(loaded.modified, "fresh: no refresh due")
        self.assertIsNotNone(loaded.refreshed_at)

        data_before = dict(loaded.items())
        loaded.cycle_key()
        self.assertNotEqual(loaded.session_key, key)
        self.assertEqual(dict(loaded.items()), data_before)
        self.assertFalse(Session.objects.filter(session_key=key).exists())
        self.assertEqual(dict(engine.SessionStore(loaded.session_key).items()), {"a": 1})

        loaded.flush()
        self.assertTrue(loaded.is_empty())
        self.assertEqual(Session.objects.count(), 0)

    def test_created_empty_session_is_refreshed_not_empty(self):
        store = engine.SessionStore()
        store.create()
        self.assertEqual(list(store.keys()), [])
        self.assertFalse(store.is_empty())  # has a key, like Django's

    def test_stale_or_missing_stamp_marks_modified(self):
        store = engine.SessionStore()
        store["a"] = 1
        store.save()
        with FakeClock(start=store.refreshed_at + REFRESH):
            caches["sessions"].clear()  # from the database this time
            self.assertTrue(engine.SessionStore(store.session_key).modified)
        legacy = import_module(CACHED_DB).SessionStore()
        legacy["a"] = 1
        legacy.save()
        self.assertTrue(engine.SessionStore(legacy.session_key).modified)
        self.assertFalse(engine.SessionStore("nosuchsessionkey").modified)

    @override_settings(BUNDLE_SESSION_REFRESH_SECONDS=0)
    def test_zero_threshold_refreshes_every_time(self):
        store = engine.SessionStore()
        store["a"] = 1
        store.save()
        self.assertTrue(engine.SessionStore(store.session_key).modified)

    def test_signing_salt_and_cache_prefix_match_django(self):
        legacy_store = import_module(DB).SessionStore()
        store = engine.SessionStore()
        self.assertEqual(store.key_salt, legacy_store.key_salt)
        self.assertEqual(store.cache_key_prefix, import_module(CACHED_DB).SessionStore.cache_key_prefix)


@override_settings(**ENGINE_SETTINGS)
class EngineSwitchTests(TransactionTestCase):
    """Sessions made by db / cached_db stay logged in after SESSION_ENGINE changes."""

    def setUp(self):
        get_user_model().objects.create_user("dave", password=PASSWORD)
        get_user_model().objects.create_user("erin", password=PASSWORD)

    def login_under(self, engine_path, username):
        with override_settings(SESSION_ENGINE=engine_path):
            return login(Client(), username)

    def test_http_after_switch_from_db_and_cached_db(self):
        keys = {"dave": self.login_under(DB, "dave"), "erin": self.login_under(CACHED_DB, "erin")}
        # cached_db's cache entry is reused (same prefix): no database read.
        self.assertIsNotNone(caches["sessions"].get(engine.KEY_PREFIX + keys["erin"]))
        self.assertIsNone(caches["sessions"].get(engine.KEY_PREFIX + keys["dave"]))
        for username, key in keys.items():
            with self.subTest(username=username):
                client = Client()
                client.cookies[settings.SESSION_COOKIE_NAME] = key
                with CaptureQueriesContext(connection) as queries:
                    response = client.get("/s/whoami")
                self.assertEqual(response.json(), {"authenticated": True, "username": username})
                self.assertEqual(len(session_reads(queries)), 1 if username == "dave" else 0)
                # No stamp yet: refreshed once (row, cache, cookie)...
                self.assertEqual(len(session_writes(queries)), 1)
                self.assertEqual(set_cookie(response).value, key)
                self.assertIn(engine.REFRESHED_AT_KEY, stored_data(key))
                # ...and not again within the threshold.
                with CaptureQueriesContext(connection) as queries:
                    response = client.get("/s/whoami")
                self.assertEqual(response.json(), {"authenticated": True, "username": username})
                self.assertEqual(session_writes(queries), [])
                self.assertEqual(session_reads(queries), [])
                self.assertIsNone(set_cookie(response))

    async def test_websocket_after_switch_from_db_and_cached_db(self):
        from asgiref.sync import sync_to_async

        keys = {
            "dave": await sync_to_async(self.login_under)(DB, "dave"),
            "erin": await sync_to_async(self.login_under)(CACHED_DB, "erin"),
        }
        for username, key in keys.items():
            before = await Session.objects.aget(session_key=key)
            self.assertEqual(await ws_whoami(key), {"authenticated": True, "username": username})
            # The WebSocket path only reads: the row is not rewritten.
            after = await Session.objects.aget(session_key=key)
            self.assertEqual((after.session_data, after.expire_date), (before.session_data, before.expire_date))

    async def test_websocket_with_bundle_session(self):
        from asgiref.sync import sync_to_async

        key = await sync_to_async(login)(Client(), "erin")
        self.assertEqual(await ws_whoami(key), {"authenticated": True, "username": "erin"})
        caches["sessions"].clear()
        self.assertEqual(await ws_whoami(key), {"authenticated": True, "username": "erin"})
