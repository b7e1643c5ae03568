"""bundle_runtime.asgi: Django's HTTP handling with the middleware chain in one thread hop."""

from asgiref.sync import iscoroutinefunction
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.asgi import get_asgi_application as django_get_asgi_application
from django.core.signals import request_finished, request_started
from django.test import TransactionTestCase

from bundle_runtime.asgi import SyncChainASGIHandler, get_asgi_application

PASSWORD = "correct horse battery staple"


async def http(app, method, path, host="alpha.example", cookie=None, body=b""):
    headers = [(b"host", host.encode())]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    if body:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": headers,
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(10)
    assert start["type"] == "http.response.start", start
    chunks = []
    while True:
        message = await communicator.receive_output(10)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return {"status": start["status"], "headers": start["headers"], "body": b"".join(chunks)}


def header(response, name):
    return {key.lower(): value for key, value in response["headers"]}.get(name.lower().encode())


def session_cookie(response):
    for name, value in response["headers"]:
        if name.lower() == b"set-cookie" and value.startswith(f"{settings.SESSION_COOKIE_NAME}=".encode()):
            return value.split(b";", 1)[0].split(b"=", 1)[1].decode()
    return None


class SyncChainHandlerTests(TransactionTestCase):
    # The handler runs views in their own thread: rows must be committed.
    def setUp(self):
        get_user_model().objects.create_user("dave", password=PASSWORD)
        self.app = get_asgi_application()

    def test_middleware_chain_is_loaded_in_sync_mode(self):
        self.assertIsInstance(self.app, SyncChainASGIHandler)
        self.assertFalse(iscoroutinefunction(self.app._middleware_chain))
        # Django's own handler builds the async chain (the per-middleware hops).
        self.assertTrue(iscoroutinefunction(django_get_asgi_application()._middleware_chain))

    async def test_login_then_sync_and_async_views_see_the_user(self):
        body = f"username=dave&password={PASSWORD}".replace(" ", "+").encode()
        response = await http(self.app, "POST", "/login", body=body)
        self.assertEqual(response["status"], 200, response["body"])
        cookie = session_cookie(response)
        self.assertTrue(cookie, response["headers"])
        for path in ("/whoami", "/awhoami"):
            with self.subTest(path=path):
                response = await http(self.app, "GET", path, cookie=cookie)
                self.assertEqual(response["status"], 200, response["body"])
                self.assertEqual(response["body"], b'{"authenticated": true, "tenant": "alpha"}')
        anonymous = await http(self.app, "GET", "/whoami", host="beta.example")
        self.assertEqual(anonymous["body"], b'{"authenticated": false, "tenant": "beta"}')

    async def test_same_answers_as_djangos_handler(self):
        plain = django_get_asgi_application()
        for method, path in (("GET", "/whoami"), ("GET", "/stream"), ("GET", "/nowhere"), ("GET", "/boom")):
            with self.subTest(path=path):
                ours = await http(self.app, method, path)
                theirs = await http(plain, method, path)
                self.assertEqual(ours["status"], theirs["status"])
                self.assertEqual(ours["body"], theirs["body"])
                self.assertEqual(header(ours, "content-type"), header(theirs, "content-type"))
        streamed = await http(self.app, "GET", "/stream")
        self.assertEqual((streamed["status"], streamed["body"]), (200, b"chunk0;chunk1;chunk2;"))
        # CommonMiddleware's APPEND_SLASH and a failing view go through the chain's
        # exception handling: 404 and 500 pages, not a crashed connection.
        self.assertEqual((await http(self.app, "GET", "/boom"))["status"], 500)

    async def test_request_signals_fire_once_per_request(self):
        seen = []

        def started(**kwargs):
            seen.append("started")

        def finished(**kwargs):
            seen.append("finished")

        request_started.connect(started)
        request_finished.connect(finished)
        try:
            await http(self.app, "GET", "/whoami")
            await http(self.app, "GET", "/stream")
        finally:
            request_started.disconnect(started)
            request_finished.disconnect(finished)
        self.assertEqual(seen, ["started", "finished"] * 2)
