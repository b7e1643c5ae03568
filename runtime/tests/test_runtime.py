"""bundle_runtime: tenants by host, tenant cache keys, WebSocket auth with fallback keys."""

import channels.auth
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.test import Client, TestCase, TransactionTestCase, override_settings
from django.urls import path

from bundle_runtime import channels_auth, tenants
from tests.ws import first_message

PASSWORD = "correct horse battery staple"


class ScopeConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json({"authenticated": user.is_authenticated, "tenant": self.scope.get("tenant")})


ROUTES = URLRouter([path("ws/", ScopeConsumer.as_asgi())])


def plain_channels_app():
    """What a normal project writes: channels' own AuthMiddlewareStack."""
    return channels.auth.AuthMiddlewareStack(ROUTES)


def dropin_app():
    return channels_auth.AuthMiddlewareStack(ROUTES)


async def ws_whoami(app, host, cookie):
    return await first_message(app, "/ws/", host, cookie)


def http_login(client, host):
    response = client.post("/login", {"username": "dave", "password": PASSWORD}, headers={"host": host})
    assert response.status_code == 200, response.content
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class TenantHttpTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        get_user_model().objects.create_user("dave", password=PASSWORD)

    def whoami(self, host, url="/whoami"):
        return self.client.get(url, headers={"host": host}).json()

    def test_session_bound_to_login_tenant(self):
        http_login(self.client, "alpha.example")
        self.assertEqual(self.whoami("alpha.example"), {"authenticated": True, "tenant": "alpha"})
        self.assertEqual(self.whoami("alpha.example:8443"), {"authenticated": True, "tenant": "alpha"})
        # Another tenant's host: anonymous there, mapping is case-insensitive.
        self.assertEqual(self.whoami("beta.example"), {"authenticated": False, "tenant": "beta"})
        # A host without tenant is not the login tenant either.
        self.assertEqual(self.whoami("plain.example"), {"authenticated": False, "tenant": None})
        # ...but the session was not flushed: still valid on its own host.
        self.assertEqual(Session.objects.count(), 1)
        self.assertEqual(self.whoami("alpha.example"), {"authenticated": True, "tenant": "alpha"})

    async def test_async_view_uses_guarded_auser(self):
        # AsyncClient always sends "Host: testserver": map that host instead.
        with override_settings(BUNDLE_TENANTS={"testserver": "beta"}):
            response = await self.async_client.post("/login", {"username": "dave", "password": PASSWORD})
            self.assertEqual(response.status_code, 200)
            beta = await self.async_client.get("/awhoami")
        with override_settings(BUNDLE_TENANTS={"testserver": "alpha"}):
            alpha = await self.async_client.get("/awhoami")
        self.assertEqual(beta.json(), {"authenticated": True, "tenant": "beta"})
        self.assertEqual(alpha.json(), {"authenticated": False, "tenant": "alpha"})

    @override_settings(BUNDLE_TENANTS={})
    def test_single_tenant(self):
        http_login(self.client, "alpha.example")
        self.assertEqual(self.whoami("alpha.example"), {"authenticated": True, "tenant": None})
        self.assertEqual(self.whoami("beta.example"), {"authenticated": True, "tenant": None})


class TenantCacheKeyTests(TestCase):
    def test_default_cache_is_namespaced_per_tenant(self):
        self.client.get("/cache/put?value=from-alpha", headers={"host": "alpha.example"})
        self.client.get("/cache/put?value=unscoped", headers={"host": "plain.example"})
        self.assertEqual(self.client.get("/cache/get", headers={"host": "alpha.example"}).json()["value"], "from-alpha")
        self.assertIsNone(self.client.get("/cache/get", headers={"host": "beta.example"}).json()["value"])
        self.assertEqual(self.client.get("/cache/get", headers={"host": "plain.example"}).json()["value"], "unscoped")

    def test_make_key_outside_a_request_is_django_default(self):
        self.assertEqual(tenants.make_key("k", "prefix", 1), "prefix:1:k")
        self.assertIsNone(tenants.current_tenant())


class ChannelsAuthTests(TransactionTestCase):
    def setUp(self):
        self.user = get_user_model().objects.create_user("dave", password=PASSWORD)
        self.client = Client()

    def login_with_old_key(self):
        with override_settings(SECRET_KEY="old-secret-key"):
            return http_login(self.client, "alpha.example")

    def test_ready_rebinds_channels_get_user(self):
        self.assertIs(channels.auth.get_user, channels_auth.get_user)
        self.assertIsNot(channels.auth.bundle_original_get_user, channels_auth.get_user)

    async def test_fallback_key_accepted_and_hash_upgraded_in_place(self):
        cookie = await self.sync(self.login_with_old_key)
        with override_settings(SECRET_KEY="new-secret-key", SECRET_KEY_FALLBACKS=["old-secret-key"]):
            for app in (plain_channels_app(), dropin_app()):
                self.assertEqual(
                    await ws_whoami(app, "alpha.example", cookie), {"authenticated": True, "tenant": "alpha"}
                )
            session = await Session.objects.aget(session_key=cookie)
            expected_hash = await self.sync(self.user.get_session_auth_hash)
            self.assertEqual(session.get_decoded()[HASH_SESSION_KEY], expected_hash)
            # The browser's cookie (same key) keeps working over HTTP.
            self.client.cookies[settings.SESSION_COOKIE_NAME] = cookie
            response = await self.sync(lambda: self.client.get("/whoami", headers={"host": "alpha.example"}))
            self.assertEqual(response.json(), {"authenticated": True, "tenant": "alpha"})

    async def test_channels_original_get_user_flushes_on_rotation(self):
        """The bug this package fixes: plain channels logs the user out everywhere."""
        cookie = await self.sync(self.login_with_old_key)
        original = channels.auth.bundle_original_get_user
        channels.auth.get_user = original
        try:
            with override_settings(SECRET_KEY="new-secret-key", SECRET_KEY_FALLBACKS=["old-secret-key"]):
                result = await ws_whoami(plain_channels_app(), "alpha.example", cookie)
        finally:
            channels_auth.install()
        self.assertFalse(result["authenticated"])
        self.assertFalse(await Session.objects.filter(session_key=cookie).aexists())

    async def test_unknown_hash_is_flushed_like_django(self):
        cookie = await self.sync(self.login_with_old_key)
        with override_settings(SECRET_KEY="new-secret-key", SECRET_KEY_FALLBACKS=[]):
            result = await ws_whoami(plain_channels_app(), "alpha.example", cookie)
        self.assertFalse(result["authenticated"])
        self.assertFalse(await Session.objects.filter(session_key=cookie).aexists())

    async def test_websocket_on_other_tenant_is_anonymous_without_flush(self):
        cookie = await self.sync(lambda: http_login(self.client, "alpha.example"))
        self.assertEqual(
            await ws_whoami(plain_channels_app(), "beta.example", cookie), {"authenticated": False, "tenant": "beta"}
        )
        self.assertTrue(await Session.objects.filter(session_key=cookie).aexists())
        self.assertEqual(
            await ws_whoami(plain_channels_app(), "alpha.example", cookie), {"authenticated": True, "tenant": "alpha"}
        )

    @staticmethod
    async def sync(func):
        from asgiref.sync import sync_to_async

        return await sync_to_async(func)()
