"""``manage.py bundle_sessions``: session statistics and a login canary (JSON on stdout).

* ``stats [--since ISO8601]`` -- live sessions in the database and keys in the
  sessions Redis DB, to prove a deploy kept users logged in.
* ``canary create [--username bundle-canary]`` -- a user with an unusable
  password and a session identical to what ``django.contrib.auth.login``
  stores; ``canary check --session-key K`` resolves it like a request would
  (``django.contrib.auth.get_user``, SECRET_KEY_FALLBACKS included);
  ``canary delete --session-key K`` removes it.
"""

import json
import sys
from contextlib import redirect_stdout
from datetime import datetime
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user, get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router
from django.http import HttpRequest
from django.utils import timezone

DEFAULT_CANARY = "bundle-canary"


def session_store_class():
    """``SessionStore`` of ``settings.SESSION_ENGINE``."""
    return import_module(settings.SESSION_ENGINE).SessionStore


def session_model():
    """The session model of a database-backed engine, or None (cache/signed-cookie engines)."""
    store = session_store_class()
    get_model_class = getattr(store, "get_model_class", None)
    return get_model_class() if get_model_class else None


def session_table_exists(model, for_write=False):
    """True when the table of ``model`` exists on the database the router picks for it."""
    alias = router.db_for_write(model) if for_write else router.db_for_read(model)
    connection = connections[alias]
    with connection.cursor() as cursor:
        return model._meta.db_table in connection.introspection.table_names(cursor)


def parse_since(text):
    """ISO 8601 -> aware datetime (naive values are in the current time zone)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since must be an ISO 8601 date/time, got {text!r}") from None
    if settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def redis_dbsize(alias):
    """``(keys, error)`` for the Redis DB behind cache ``alias``.

    ``keys`` is None when the cache is not django-redis (``error`` None) or
    when Redis fails (``error`` is the exception's class name).
    """
    from django.core.cache import caches

    try:
        cache = caches[alias]
    except Exception as exc:  # InvalidCacheBackendError, import errors of the backend
        return None, type(exc).__name__
    if not type(cache).__module__.startswith("django_redis"):
        return None, None
    try:
        from django_redis import get_redis_connection

        return int(get_redis_connection(alias).dbsize()), None
    except Exception as exc:
        return None, type(exc).__name__


class Command(BaseCommand):
    help = "Session statistics and login canary for deploy checks (JSON on stdout)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        stats = sub.add_parser("stats", help="Count live sessions (database and Redis).")
        stats.add_argument("--since", help="Also count sessions expiring after this ISO 8601 date/time.")
        canary = sub.add_parser("canary", help="Create, check or delete a canary login session.")
        canary_sub = canary.add_subparsers(dest="canary_action", required=True)
        create = canary_sub.add_parser("create", help="Create (or update) the canary user and a session for it.")
        create.add_argument("--username", default=DEFAULT_CANARY, help=f"Canary username (default {DEFAULT_CANARY}).")
        for name, text in (("check", "Is the session still logged in?"), ("delete", "Delete the session.")):
            each = canary_sub.add_parser(name, help=text)
            each.add_argument("--session-key", required=True, dest="session_key")

    def handle(self, *args, **options):
        with redirect_stdout(sys.stderr):  # only our JSON reaches stdout
            if options["action"] == "stats":
                result = self.stats(options.get("since"))
            else:
                result = getattr(self, "canary_" + options["canary_action"])(options)
        self.stdout.write(json.dumps(result))

    def stats(self, since_text):
        """``{"now", "table", "database_active", "database_since", "cache_keys", "cache_error", ...}``."""
        now = timezone.now()
        since = parse_since(since_text) if since_text else None
        result = {
            "now": now.isoformat(),
            "engine": settings.SESSION_ENGINE,
            "table": None,
            "database_active": None,
            "database_since": None,
        }
        model = session_model()
        if model is not None:
            result["table"] = session_table_exists(model)
            if result["table"]:
                sessions = model._default_manager.using(router.db_for_read(model))
                result["database_active"] = sessions.filter(expire_date__gt=now).count()
                if since is not None:
                    result["database_since"] = sessions.filter(expire_date__gt=since).count()
        alias = getattr(settings, "SESSION_CACHE_ALIAS", "default")
        keys, error = redis_dbsize(alias)
        result.update({"cache_alias": alias, "cache_keys": keys, "cache_error": error})
        return result

    def require_table(self):
        model = session_model()
        if model is not None and not session_table_exists(model, for_write=True):
            raise CommandError(
                f"The session table {model._meta.db_table!r} does not exist yet: run the migrations first."
            )

    def canary_create(self, options):
        """Create or update the canary user and a logged-in session exactly as ``login()`` stores it."""
        self.require_table()
        if not settings.AUTHENTICATION_BACKENDS:
            raise CommandError("settings.AUTHENTICATION_BACKENDS is empty.")
        username = options["username"]
        User = get_user_model()
        user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            user = User(**{User.USERNAME_FIELD: username})
        if user.has_usable_password() or not user.password:
            # Never loginable with a password. An already unusable one is kept:
            # a new random one would change the auth hash and end older canaries.
            user.set_unusable_password()
        user.is_active = True
        for flag in ("is_staff", "is_superuser"):
            if hasattr(user, flag):
                setattr(user, flag, False)
        user.save()

        store = session_store_class()()
        store[SESSION_KEY] = user._meta.pk.value_to_string(user)
        store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        return {
            "username": username,
            "cookie_name": settings.SESSION_COOKIE_NAME,
            "session_key": store.session_key,
            "expire_date": store.get_expiry_date().isoformat(),
        }

    def canary_check(self, options):
        """Resolve the session's user like a request would (hash and SECRET_KEY_FALLBACKS checks).

        As with a real request, a session authenticated by a fallback key is
        moved to a new key (``session_key`` in the output, ``rotated`` true)
        and a session whose hash matches no key is flushed.
        """
        key = options["session_key"]
        request = HttpRequest()
        request.session = session_store_class()(session_key=key)
        user = get_user(request)
        session = request.session
        if session.session_key and session.modified and not session.is_empty():
            session.save()  # what SessionMiddleware does at the end of the request
        authenticated = bool(user.is_authenticated)
        return {
            "authenticated": authenticated,
            "username": user.get_username() if authenticated else None,
            "session_key": session.session_key,
            "rotated": bool(session.session_key) and session.session_key != key,
        }

    def canary_delete(self, options):
        """Delete the session (database and cache); ``{"deleted": bool}``."""
        key = options["session_key"]
        store = session_store_class()(session_key=key)
        existed = store.exists(key)
        store.delete(key)
        return {"deleted": bool(existed)}
