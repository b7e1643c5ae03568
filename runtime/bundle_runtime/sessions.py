"""Session engine: ``cached_db`` that refreshes a session only when it is due.

``SESSION_ENGINE = "bundle_runtime.sessions"``. What users see is what
``SESSION_SAVE_EVERY_REQUEST = True`` gives them (an active user is never
logged out, the expiry window slides with activity, the cookie's expiry moves
forward), but an unmodified session is written (database and cache) at most
once per ``settings.BUNDLE_SESSION_REFRESH_SECONDS`` (default 300) instead of
on every request. ``SESSION_SAVE_EVERY_REQUEST`` stays ``False``.

How: :meth:`SessionStore.save` stamps the stored data with the refresh time
(``_bundle_refreshed_at``, epoch seconds, in the database row and the cache
entry only -- the in-memory session never shows it, so ``keys()``,
``is_empty()``, login, logout, ``flush()`` and ``cycle_key()`` behave as
usual). When a loaded session has no stamp (written by the plain ``db`` or
``cached_db`` engines) or a stamp older than the threshold, the store marks
itself ``modified``: Django's own ``SessionMiddleware`` then saves it and
re-sends the cookie with a fresh expiry. No middleware of our own.

A request whose view never reads the session still counts as activity (as it
did with ``SESSION_SAVE_EVERY_REQUEST``): reading ``modified`` -- which
``SessionMiddleware.process_response`` does -- loads a session that has a key
but was not loaded yet (one cache read). That lazy load is skipped inside a
running event loop (Channels' async session wrapper), where a database
fallback would be illegal, and its errors are logged, never raised.

Bound on expiry accuracy: with ``T`` = the effective threshold, a session is
rewritten on the first request at least ``T`` seconds after its last write,
so an idle user expires between ``SESSION_COOKIE_AGE - T`` and
``SESSION_COOKIE_AGE`` after their last request, and a user is never logged
out while the gaps between their requests stay below ``SESSION_COOKIE_AGE -
T``. ``T`` is capped at half the session's age (``SESSION_COOKIE_AGE``, or
the integer given to ``set_expiry()``), so short ages keep sliding. ``0``
refreshes on every request that has a session.

Compatibility: the class is named ``SessionStore`` like Django's (the
signing salt is ``"django.contrib.sessions." + __qualname__``) and keeps
``cached_db``'s cache key prefix, so sessions and cache entries written by
``django.contrib.sessions.backends.db`` or ``cached_db`` are read as they
are; switching back to those engines is also safe (the stamp is one more key
they ignore).
"""

import asyncio
import logging
import numbers
import time

from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.backends.db import SessionStore as DBStore

logger = logging.getLogger("django.contrib.sessions")

#: Key of the refresh time (epoch seconds) in the stored session data.
REFRESHED_AT_KEY = "_bundle_refreshed_at"
#: Default of ``settings.BUNDLE_SESSION_REFRESH_SECONDS``.
DEFAULT_REFRESH_SECONDS = 300


def refresh_seconds():
    """``settings.BUNDLE_SESSION_REFRESH_SECONDS`` (default 300, never negative)."""
    value = getattr(settings, "BUNDLE_SESSION_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS)
    if value is None:
        value = DEFAULT_REFRESH_SECONDS
    return max(0, int(value))


def _in_event_loop():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SessionStore(CachedDBStore):
    """``cached_db`` sessions refreshed when due instead of on every request.

    Keep this class name: Django derives the signing salt of the session data
    from it, another name would make every existing session undecodable.
    """

    cache_key_prefix = KEY_PREFIX

    def __init__(self, session_key=None):
        self._bundle_modified = False
        #: Refresh time (epoch seconds) of the loaded/saved data, None if unknown.
        self.refreshed_at = None
        super().__init__(session_key)

    # -- modified: Django's flag, plus a lazy "refresh due?" check -----------

    @property
    def modified(self):
        if self._bundle_modified:
            return True
        if "_session_cache" not in self.__dict__ and self.session_key is not None and not _in_event_loop():
            # Not read by the view: load it now (cache hit in the common case),
            # which marks it modified when a refresh is due.
            accessed = self.accessed
            try:
                self._get_session()
            except Exception:
                logger.warning("Could not check whether the session needs a refresh", exc_info=True)
            finally:
                self.accessed = accessed
        return self._bundle_modified

    @modified.setter
    def modified(self, value):
        self._bundle_modified = value

    # -- loading: strip the stamp, decide whether a refresh is due -----------

    def _refresh_due(self, data, stamp):
        if not isinstance(stamp, numbers.Real) or isinstance(stamp, bool):
            return True
        expiry = data.get("_session_expiry")
        age = expiry if isinstance(expiry, int) and not isinstance(expiry, bool) and expiry > 0 else None
        age = age or self.get_session_cookie_age()
        threshold = min(refresh_seconds(), age // 2)
        # abs(): a stamp from a host whose clock runs ahead is not "fresh forever".
        return abs(time.time() - stamp) >= threshold

    def _after_load(self, data):
        data = dict(data)
        stamp = data.pop(REFRESHED_AT_KEY, None)
        if self.session_key is None:
            # No such session (expired, deleted, bad key): nothing to refresh;
            # an anonymous visitor must not get a session saved for them.
            self.refreshed_at = None
            return data
        self.refreshed_at = stamp if isinstance(stamp, numbers.Real) else None
        if self._refresh_due(data, stamp):
            self.modified = True
        return data

    def load(self):
        return self._after_load(super().load())

    async def aload(self):
        return self._after_load(await super().aload())

    # -- saving: stamp what goes to the database and the cache ---------------

    def _stamped(self, data):
        stamped = dict(data)
        stamped[REFRESHED_AT_KEY] = self.refreshed_at
        return stamped

    def create_model_instance(self, data):
        self.refreshed_at = time.time()
        return super().create_model_instance(self._stamped(data))

    async def acreate_model_instance(self, data):
        self.refreshed_at = time.time()
        return await super().acreate_model_instance(self._stamped(data))

    def save(self, must_create=False):
        # cached_db.save(), with the stamped data in the cache, and the cached
        # copy dropped when the row is gone (logout elsewhere, or during a
        # Redis outage): a dead session must not stay readable from the cache.
        try:
            DBStore.save(self, must_create)
        except UpdateError:
            self._drop_cached_copy()
            raise
        try:
            self._cache.set(self.cache_key, self._stamped(self._session), self.get_expiry_age())
        except Exception:
            logger.exception("Error saving to cache (%s)", self._cache)

    async def asave(self, must_create=False):
        try:
            await DBStore.asave(self, must_create)
        except UpdateError:
            if self.session_key is not None:
                try:
                    await self._cache.adelete(self.cache_key_prefix + self.session_key)
                except Exception:
                    logger.exception("Error deleting from cache (%s)", self._cache)
            raise
        try:
            await self._cache.aset(
                await self.acache_key(), self._stamped(await self._aget_session()), await self.aget_expiry_age()
            )
        except Exception:
            logger.exception("Error saving to cache (%s)", self._cache)

    def _drop_cached_copy(self):
        if self.session_key is None:
            return
        try:
            self._cache.delete(self.cache_key_prefix + self.session_key)
        except Exception:
            logger.exception("Error deleting from cache (%s)", self._cache)
