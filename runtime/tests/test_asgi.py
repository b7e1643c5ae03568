"""bundle_runtime.asgi: Django's HTTP handling with the middleware chain in one thread hop."""

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

from asgiref.sync import iscoroutinefunction
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.asgi import get_asgi_application as django_get_asgi_application
from django.core.signals import request_finished, request_started
from django.test import SimpleTestCase, TransactionTestCase

from bundle_runtime.asgi import REUSES_THREADS, SyncChainASGIHandler, get_asgi_application

from . import urls

PASSWORD = "correct horse battery staple"


async def http(app, method, path, host="alpha.example", cookie=None, body=b""):
    headers = [(b"host", host.encode())]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    if body:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "query_string": query.encode(),
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
        # Not only the same as Django: the right answers (a failing view is a
        # 500 page from the chain's exception handling, not a dropped connection).
        streamed = await http(self.app, "GET", "/stream")
        self.assertEqual((streamed["status"], streamed["body"]), (200, b"chunk0;chunk1;chunk2;"))
        self.assertEqual((await http(self.app, "GET", "/nowhere"))["status"], 404)
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

    async def test_request_threads_are_reused_but_never_shared(self):
        self.assertTrue(REUSES_THREADS, "the pinned asgiref has ThreadSensitiveContext(executor=...)")
        first = json.loads((await http(self.app, "GET", "/thread"))["body"])["thread"]
        await wait_for_idle_threads(self.app, 1)
        second = json.loads((await http(self.app, "GET", "/thread"))["body"])["thread"]
        self.assertEqual(first, second)  # the finished request's thread served the next one
        await wait_for_idle_threads(self.app, 1)
        # Two requests at once: each view waits at a two-party barrier, so both
        # answer 200 only if they ran at the same time on two threads.
        urls.MEET.reset()
        answers = await asyncio.gather(*(http(self.app, "GET", "/thread?meet=1") for _ in range(2)))
        self.assertEqual([a["status"] for a in answers], [200, 200], answers)
        threads = {json.loads(a["body"])["thread"] for a in answers}
        self.assertEqual(len(threads), 2)
        self.assertIn(first, threads)  # the idle thread took one of them
        await wait_for_idle_threads(self.app, 2)

    async def test_without_executor_support_each_request_gets_djangos_own_thread(self):
        # asgiref < 3.13: Django's __call__ (a new thread per request), same answers.
        with mock.patch("bundle_runtime.asgi.REUSES_THREADS", False):
            answers = [await http(self.app, "GET", "/thread") for _ in range(2)]
        self.assertEqual([a["status"] for a in answers], [200, 200], answers)
        names = [json.loads(a["body"])["name"] for a in answers]
        self.assertNotEqual(names[0], names[1])
        self.assertFalse(any(name.startswith("django-request") for name in names), names)
        self.assertEqual(len(self.app._idle_executors), 0)


async def wait_for_idle_threads(app, count, timeout=5):
    """Executors go back to the idle list from their own thread, just after the response."""
    deadline = time.monotonic() + timeout
    while len(app._idle_executors) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(app._idle_executors)} idle request threads, expected {count}")
        await asyncio.sleep(0.01)


def poll(predicate, timeout=5):
    """True as soon as ``predicate()`` is, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def is_shut_down(executor):
    try:
        executor.submit(int).result()
    except RuntimeError:  # "cannot schedule new futures after shutdown"
        return True
    return False


class ThreadReleaseTests(SimpleTestCase):
    def test_a_busy_thread_is_not_handed_to_the_next_request(self):
        # A request whose client went away leaves its view running on the thread.
        app = SyncChainASGIHandler()
        executor = ThreadPoolExecutor(max_workers=1)
        gate = threading.Event()
        executor.submit(gate.wait, 10)
        app._release(executor)
        time.sleep(0.2)
        self.assertEqual(len(app._idle_executors), 0)
        gate.set()
        self.assertTrue(poll(lambda: app._idle_executors), "the executor did not become idle")
        self.assertEqual(list(app._idle_executors), [executor])
        executor.shutdown()

    def test_threads_beyond_the_idle_limit_are_stopped(self):
        app = SyncChainASGIHandler()
        app.max_idle_threads = 1
        kept, extra = ThreadPoolExecutor(max_workers=1), ThreadPoolExecutor(max_workers=1)
        app._release(kept)
        self.assertTrue(poll(lambda: app._idle_executors), "the first executor did not become idle")
        app._release(extra)
        self.assertTrue(poll(lambda: is_shut_down(extra)), "the executor beyond max_idle_threads was not shut down")
        self.assertEqual(list(app._idle_executors), [kept])
        kept.shutdown()
