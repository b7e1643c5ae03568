"""Tenants resolved from the request host.

``settings.BUNDLE_TENANTS`` maps a hostname (no port, case-insensitive) to a
tenant name. Empty or missing means single-tenant: ``request.tenant`` is
``None`` and nothing below changes behaviour.

With tenants configured:

* :class:`TenantMiddleware` (placed after ``AuthenticationMiddleware``) sets
  ``request.tenant`` from the host and makes the current tenant available to
  :func:`make_key` through a context variable.
* On login (``user_logged_in``) the request's tenant is stored in the session.
  A session authenticated for one tenant is anonymous on another tenant's
  host: ``request.user`` is ``AnonymousUser`` for that request only, the
  session itself is kept (it stays valid on its own host). Sessions without a
  stored tenant (logged in before tenants were configured, or through
  ``channels.auth.login`` which has no request) only authenticate on hosts
  that map to no tenant.
* :func:`make_key` prefixes cache keys with the current tenant. The deploy
  settings use it for the ``default`` cache alias only, never for the
  ``sessions`` alias (session keys are random and must be readable from every
  host of the tenant).
"""

import contextvars

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.functional import SimpleLazyObject

#: Session key holding the tenant the session was authenticated for.
SESSION_KEY = "_bundle_tenant"

_current_tenant = contextvars.ContextVar("bundle_runtime_tenant", default=None)


def tenant_map():
    """The configured hostname -> tenant mapping, normalised (may be empty)."""
    mapping = getattr(settings, "BUNDLE_TENANTS", None) or {}
    return {str(host).lower().rstrip("."): tenant for host, tenant in mapping.items()}


def enabled():
    """True when at least one tenant is configured."""
    return bool(getattr(settings, "BUNDLE_TENANTS", None))


def tenant_for_host(host):
    """Tenant for a ``Host`` header value (port stripped), or ``None``."""
    mapping = tenant_map()
    if not mapping or not host:
        return None
    domain, _port = split_domain_port(host)
    return mapping.get(domain)


def tenant_for_request(request):
    """Tenant of an HTTP request (its host is validated by ``get_host``)."""
    if not enabled():
        return None
    return tenant_for_host(request.get_host())


def tenant_for_scope(scope):
    """Tenant of an ASGI scope from its ``Host`` header (checked against ALLOWED_HOSTS)."""
    if not enabled():
        return None
    host = ""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin1")
            break
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    return tenant_for_host(host)


def current_tenant():
    """Tenant of the request being processed in this context (or ``None``)."""
    return _current_tenant.get()


def session_allows(session, tenant):
    """True if an authenticated ``session`` may be used on ``tenant``'s hosts."""
    if not enabled():
        return True
    return session.get(SESSION_KEY) == tenant


def bind_session_to_tenant(sender, request=None, user=None, **kwargs):
    """``user_logged_in`` receiver: remember the tenant the login happened on."""
    if request is None or not enabled():
        return
    tenant = request.tenant if hasattr(request, "tenant") else tenant_for_request(request)
    request.session[SESSION_KEY] = tenant


def _anonymous():
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


class TenantMiddleware:
    """Set ``request.tenant``; hide users authenticated for another tenant."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def _prepare(self, request):
        tenant = tenant_for_request(request)
        request.tenant = tenant
        if enabled() and hasattr(request, "user"):
            self._guard_user(request, tenant)
        return _current_tenant.set(tenant)

    @staticmethod
    def _guard_user(request, tenant):
        original_user = request.user

        def guarded_user():
            if original_user.is_authenticated and not session_allows(request.session, tenant):
                return _anonymous()
            return original_user

        request.user = SimpleLazyObject(guarded_user)
        original_auser = getattr(request, "auser", None)
        if original_auser is not None:

            async def guarded_auser():
                user = await original_auser()
                if user.is_authenticated and await request.session.aget(SESSION_KEY) != tenant:
                    return _anonymous()
                return user

            request.auser = guarded_auser

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        token = self._prepare(request)
        try:
            return self.get_response(request)
        finally:
            _current_tenant.reset(token)

    async def __acall__(self, request):
        token = self._prepare(request)
        try:
            return await self.get_response(request)
        finally:
            _current_tenant.reset(token)


def make_key(key, key_prefix, version):
    """Cache ``KEY_FUNCTION``: Django's default key, namespaced by the current tenant."""
    tenant = _current_tenant.get()
    if tenant is None:
        return f"{key_prefix}:{version}:{key}"
    return f"{key_prefix}:{version}:tenant.{tenant}:{key}"
