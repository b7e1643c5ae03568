"""HTTP views: health, identity, login flow with CSRF, private page."""

import re

from django.contrib.auth import get_user_model
from django.test import Client, TestCase, override_settings

PASSWORD = "correct horse battery staple"

# A Redis nobody listens on: django-redis raises, the healthz view must report
# the cache as down and still answer 200.
UNREACHABLE_REDIS_CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


class HealthzTests(TestCase):
    @override_settings(BUNDLE_RELEASE_ID="r-20260101-abc")
    def test_healthy(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"release": "r-20260101-abc", "database": True, "cache": True})
        self.assertIn("no-cache", response["Cache-Control"])

    @override_settings(CACHES=UNREACHABLE_REDIS_CACHES)
    def test_cache_down_is_still_200(self):
        with self.assertLogs("bundle_sample.views", level="ERROR"):
            response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["cache"], False)
        self.assertEqual(response.json()["database"], True)

    def test_no_session_needed(self):
        response = self.client.get("/healthz")
        self.assertNotIn("sessionid", response.cookies)


class WhoAmITests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = get_user_model().objects.create_user("alice", password=PASSWORD)

    def test_anonymous(self):
        response = self.client.get("/whoami")
        self.assertEqual(response.json(), {"authenticated": False, "username": None, "tenant": None})

    def test_authenticated(self):
        self.client.force_login(self.user)
        response = self.client.get("/whoami")
        self.assertEqual(response.json(), {"authenticated": True, "username": "alice", "tenant": None})


class LoginFlowTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = get_user_model().objects.create_user("bob", password=PASSWORD)

    def test_private_redirects_to_login(self):
        response = self.client.get("/private/")
        self.assertRedirects(response, "/accounts/login/?next=/private/", fetch_redirect_response=False)

    def test_login_requires_csrf_and_logs_in(self):
        client = Client(enforce_csrf_checks=True)
        page = client.get("/accounts/login/?next=/private/")
        self.assertEqual(page.status_code, 200)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)

        refused = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
        self.assertEqual(refused.status_code, 403)
        self.assertFalse(client.get("/whoami").json()["authenticated"])

        wrong = client.post(
            "/accounts/login/", {"username": "bob", "password": "nope", "csrfmiddlewaretoken": token}
        )
        self.assertEqual(wrong.status_code, 200)
        self.assertContains(wrong, "Please enter a correct username and password")

        response = client.post(
            "/accounts/login/",
            {"username": "bob", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/private/"},
        )
        self.assertRedirects(response, "/private/", fetch_redirect_response=False)
        private = client.get("/private/")
        self.assertContains(private, "Hello bob")
        self.assertEqual(client.get("/whoami").json()["username"], "bob")

        logout_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', private.content.decode()).group(1)
        client.post("/accounts/logout/", {"csrfmiddlewaretoken": logout_token})
        self.assertFalse(client.get("/whoami").json()["authenticated"])

    def test_admin_login_page(self):
        response = self.client.get("/admin/", follow=True)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "csrfmiddlewaretoken")
