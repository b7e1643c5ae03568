"""The WebSocket consumer through the real ASGI application (plain channels auth stack)."""

from channels.testing.websocket import WebsocketCommunicator  # channels.testing needs daphne
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, TransactionTestCase

from bundle_sample.asgi import application

PASSWORD = "correct horse battery staple"


def ws_headers(cookie=None, origin="http://testserver"):
    headers = [(b"host", b"testserver"), (b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


class WhoAmIConsumerTests(TransactionTestCase):
    def setUp(self):
        self.user = get_user_model().objects.create_user("carol", password=PASSWORD)

    async def whoami(self, headers):
        communicator = WebsocketCommunicator(application, "/ws/whoami/", headers=headers)
        connected, _ = await communicator.connect()
        try:
            self.assertTrue(connected)
            first = await communicator.receive_json_from()
            await communicator.send_json_to({"again": True})
            second = await communicator.receive_json_from()
            self.assertEqual(first, second)
            return first
        finally:
            await communicator.disconnect()

    async def test_anonymous(self):
        self.assertEqual(
            await self.whoami(ws_headers()), {"authenticated": False, "username": None, "tenant": None}
        )

    async def test_authenticated_with_http_session(self):
        client = Client()
        await client.alogin(username="carol", password=PASSWORD)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        self.assertEqual(
            await self.whoami(ws_headers(cookie)), {"authenticated": True, "username": "carol", "tenant": None}
        )

    async def test_foreign_origin_rejected(self):
        communicator = WebsocketCommunicator(
            application, "/ws/whoami/", headers=ws_headers(origin="http://evil.example")
        )
        connected, _ = await communicator.connect()
        self.assertFalse(connected)
