"""CircuitBreakerRedis through django-redis against a real hung TCP endpoint."""

import socket
import threading
import time

from django.test import SimpleTestCase, override_settings
from django_redis.cache import RedisCache

from bundle_runtime.redis_client import SkipCircuitOpen


class HungServer:
    """Accepts TCP connections and never answers (like a SIGSTOPped Redis)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def make_cache(port, client_class):
    options = {
        "SOCKET_CONNECT_TIMEOUT": 0.3,
        "SOCKET_TIMEOUT": 0.3,
        "IGNORE_EXCEPTIONS": True,
        "CONNECTION_POOL_KWARGS": {"max_connections": 5, "retry_on_timeout": False},
    }
    if client_class:
        options["REDIS_CLIENT_CLASS"] = client_class
    return RedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": options})


def timed(func):
    start = time.monotonic()
    value = func()
    return value, time.monotonic() - start


@override_settings(BUNDLE_REDIS_BREAKER_SECONDS=1.0)
class CircuitBreakerTests(SimpleTestCase):
    def setUp(self):
        self.server = HungServer()
        self.addCleanup(self.server.close)

    def test_hung_redis_is_skipped_while_breaker_is_open(self):
        cache = make_cache(self.server.port, "bundle_runtime.redis_client.CircuitBreakerRedis")
        with self.assertLogs("bundle_runtime.redis", "WARNING") as logs:
            value, first = timed(lambda: cache.get("k"))
        self.assertIsNone(value)
        self.assertGreaterEqual(first, 0.25)
        self.assertIn("skipping it for 1.0 s", logs.output[0])
        connections = len(self.server.accepted)

        for _ in range(10):
            value, elapsed = timed(lambda: cache.get("k"))
            self.assertIsNone(value)
            self.assertLess(elapsed, 0.05)
            cache.set("k", "v")  # ignored as well, without waiting
        self.assertEqual(len(self.server.accepted), connections)

        time.sleep(1.1)  # window over: the next call probes Redis again
        _, probe = timed(lambda: cache.get("k"))
        self.assertGreaterEqual(probe, 0.25)

    @override_settings(DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS=True, DJANGO_REDIS_LOGGER="django_redis")
    def test_log_filter_keeps_real_failures_drops_skipped_calls(self):
        cache = make_cache(self.server.port, "bundle_runtime.redis_client.CircuitBreakerRedis")
        with self.assertLogs("django_redis", "ERROR") as logs:
            for _ in range(3):
                cache.get("k")
        self.assertEqual(len(logs.records), 3)
        kept = [record for record in logs.records if SkipCircuitOpen().filter(record)]
        self.assertEqual(len(kept), 1)  # the timeout that opened the breaker

    def test_plain_client_waits_every_time(self):
        """The behaviour the breaker avoids: each call pays the socket timeout."""
        cache = make_cache(self.server.port, None)
        for _ in range(2):
            _, elapsed = timed(lambda: cache.get("k"))
            self.assertGreaterEqual(elapsed, 0.25)
