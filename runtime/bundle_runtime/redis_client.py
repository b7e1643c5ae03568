"""redis-py client with a per-endpoint circuit breaker, for django-redis.

With ``IGNORE_EXCEPTIONS`` django-redis turns a Redis failure into a cache
miss, but every cache call still waits for the socket timeouts: with a hung
Redis (TCP accepted, no answer) each request pays ``SOCKET_TIMEOUT`` for every
cache operation. ``CircuitBreakerRedis`` (``OPTIONS["REDIS_CLIENT_CLASS"]``)
remembers a connection failure or timeout per connection pool -- django-redis
keeps one pool per endpoint per process -- and for
``settings.BUNDLE_REDIS_BREAKER_SECONDS`` (default 5, 0 disables) fails fast
with ``redis.ConnectionError`` instead of trying again. After that window one
call probes Redis again. Protocol errors (``ResponseError``: NOPERM, OOM...)
do not open the breaker.
"""

import logging
import time

import redis
from django.conf import settings

logger = logging.getLogger("bundle_runtime.redis")

_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
DEFAULT_BREAKER_SECONDS = 5.0


class CircuitOpenError(redis.exceptions.ConnectionError):
    """Raised instead of contacting an endpoint whose breaker is open."""


class SkipCircuitOpen(logging.Filter):
    """Logging filter: drop django-redis "Exception ignored" records caused by an open breaker.

    The breaker already logged one warning when it opened; repeating a
    traceback for every skipped cache call would flood the journal.
    """

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, CircuitOpenError):
                return False
            error = error.__cause__ or error.__context__
        return True


def breaker_seconds():
    return float(getattr(settings, "BUNDLE_REDIS_BREAKER_SECONDS", DEFAULT_BREAKER_SECONDS))


class CircuitBreakerRedis(redis.Redis):
    """``redis.Redis`` that skips an endpoint for a while after it failed."""

    def _breaker_check(self):
        open_until = getattr(self.connection_pool, "_bundle_open_until", 0.0)
        if open_until and time.monotonic() < open_until:
            raise CircuitOpenError("Redis circuit breaker open (recent failure); not trying")

    def _breaker_trip(self, error):
        seconds = breaker_seconds()
        if seconds <= 0:
            return
        pool = self.connection_pool
        if not getattr(pool, "_bundle_open_until", 0.0):
            kwargs = pool.connection_kwargs
            logger.warning(
                "Redis %s:%s db %s unavailable (%s); skipping it for %.1f s",
                kwargs.get("host"), kwargs.get("port"), kwargs.get("db"), error.__class__.__name__, seconds,
            )
        pool._bundle_open_until = time.monotonic() + seconds

    def execute_command(self, *args, **options):
        self._breaker_check()
        try:
            result = super().execute_command(*args, **options)
        except _FAILURES as error:
            self._breaker_trip(error)
            raise
        if getattr(self.connection_pool, "_bundle_open_until", 0.0):
            logger.warning("Redis %s:%s is answering again", *(
                self.connection_pool.connection_kwargs.get(k) for k in ("host", "port")))
            self.connection_pool._bundle_open_until = 0.0
        return result

    def pipeline(self, *args, **kwargs):
        self._breaker_check()
        return super().pipeline(*args, **kwargs)
