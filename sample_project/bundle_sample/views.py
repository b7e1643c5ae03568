"""HTTP views of the sample project."""

import logging
import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from bundle_sample.consumers import describe

logger = logging.getLogger(__name__)


def _database_ok():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        logger.exception("healthz: database check failed")
        return False


def _caches_ok():
    """Round-trip a value through every configured cache alias."""
    token = uuid.uuid4().hex
    ok = True
    for alias in settings.CACHES:
        key = f"bundle-healthz:{token}"
        try:
            cache = caches[alias]
            cache.set(key, token, timeout=10)
            ok = ok and cache.get(key) == token
            cache.delete(key)
        except Exception:  # noqa: BLE001
            logger.exception("healthz: cache %r check failed", alias)
            ok = False
    return ok


@never_cache
def healthz(request):
    """Release id and dependency status; 200 whenever the database answers."""
    database = _database_ok()
    body = {
        "release": getattr(settings, "BUNDLE_RELEASE_ID", None),
        "database": database,
        "cache": _caches_ok(),
    }
    return JsonResponse(body, status=200 if database else 503)


@never_cache
def whoami(request):
    return JsonResponse(describe(request.user, getattr(request, "tenant", None)))


@never_cache
@login_required
def private(request):
    return render(
        request,
        "bundle_sample/private.html",
        {"release": getattr(settings, "BUNDLE_RELEASE_ID", None), "tenant": getattr(request, "tenant", None)},
    )
