"""WebSocket authentication for Channels that honours SECRET_KEY_FALLBACKS.

``channels.auth.get_user`` (Channels 4) compares the session's auth hash with
the hash under the current ``SECRET_KEY`` only and *flushes the session* on a
mismatch. Right after a secret rotation (old key moved to
``SECRET_KEY_FALLBACKS``) every WebSocket connection would therefore delete
its user's session -- logging the user out of HTTP as well.

:func:`get_user` mirrors ``django.contrib.auth.get_user`` (Django 5.2): it
accepts a hash made with any fallback key and upgrades the stored hash to the
current key. One deliberate difference: the session key is not cycled,
because a WebSocket handshake response cannot deliver a new session cookie;
the upgraded hash is saved in place instead. With tenants configured
(``BUNDLE_TENANTS``) a session bound to another tenant yields
``AnonymousUser`` without being flushed, and ``scope["tenant"]`` is set.

:func:`install` (called by ``BundleRuntimeConfig.ready()``) rebinds
``channels.auth.get_user``. ``channels.auth.AuthMiddleware.resolve_scope``
resolves that module-level name at call time, so projects using the plain
``channels.auth.AuthMiddlewareStack`` get this behaviour without code
changes. :func:`AuthMiddlewareStack` is an explicit drop-in for projects that
prefer not to rely on the rebinding.
"""

import channels.auth
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.utils.crypto import constant_time_compare

from bundle_runtime import tenants


def _session_user_id(session):
    return get_user_model()._meta.pk.to_python(session[SESSION_KEY])


def _verify_session_hash(session, user):
    """Django's session hash check, fallback keys included; False means flush."""
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    current_hash = user.get_session_auth_hash()
    if constant_time_compare(session_hash, current_hash):
        return True
    fallback_hashes = user.get_session_auth_fallback_hash() if hasattr(user, "get_session_auth_fallback_hash") else ()
    if any(constant_time_compare(session_hash, fallback) for fallback in fallback_hashes):
        # Django cycles the key here; over a WebSocket the browser could not
        # learn the new key, so upgrade the hash under the same key.
        session[HASH_SESSION_KEY] = current_hash
        session.save()
        return True
    return False


def _resolve_user(scope):
    from django.contrib.auth.models import AnonymousUser

    if "session" not in scope:
        raise ValueError("Cannot find session in scope. You should wrap your consumer in SessionMiddleware.")
    session = scope["session"]
    tenant = tenants.tenant_for_scope(scope)
    scope["tenant"] = tenant
    user = None
    try:
        user_id = _session_user_id(session)
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        pass
    else:
        if backend_path in settings.AUTHENTICATION_BACKENDS:
            user = load_backend(backend_path).get_user(user_id)
            if hasattr(user, "get_session_auth_hash") and not _verify_session_hash(session, user):
                session.flush()
                user = None
    if user is not None and not tenants.session_allows(session, tenant):
        user = None
    return user or AnonymousUser()


get_user = database_sync_to_async(_resolve_user)
get_user.__doc__ = "Return the user of ``scope``'s session (fallback keys and tenants honoured)."


class AuthMiddleware(channels.auth.AuthMiddleware):
    """``channels.auth.AuthMiddleware`` using :func:`get_user` explicitly."""

    async def resolve_scope(self, scope):
        scope["user"]._wrapped = await get_user(scope)


def AuthMiddlewareStack(inner):  # noqa: N802 - same name as channels'
    """Drop-in replacement for ``channels.auth.AuthMiddlewareStack``."""
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))


def install():
    """Make ``channels.auth`` (and its plain AuthMiddlewareStack) use :func:`get_user`."""
    if channels.auth.get_user is not get_user:
        channels.auth.bundle_original_get_user = channels.auth.get_user
        channels.auth.get_user = get_user
