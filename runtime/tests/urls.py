"""Views exercising request.tenant, request.user / request.auser and the cache."""

import threading

from django.contrib.auth import authenticate, login
from django.core.cache import cache
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path


def whoami(request):
    return JsonResponse(
        {"authenticated": request.user.is_authenticated, "tenant": request.tenant}
    )


async def awhoami(request):
    user = await request.auser()
    return JsonResponse({"authenticated": user.is_authenticated, "tenant": request.tenant})


def do_login(request):
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    login(request, user)
    return JsonResponse({"ok": True})


def cache_put(request):
    cache.set("greeting", request.GET["value"])
    return JsonResponse({"ok": True})


def cache_get(request):
    return JsonResponse({"value": cache.get("greeting")})


def stream(request):
    async def chunks():
        for i in range(3):
            yield f"chunk{i};"

    return StreamingHttpResponse(chunks())


#: Two requests to /thread?meet=1 only answer 200 when their views run at the
#: same time (on two threads); tests reset it.
MEET = threading.Barrier(2, timeout=10)


def thread(request):
    if request.GET.get("meet"):
        try:
            MEET.wait()
        except threading.BrokenBarrierError:
            return JsonResponse({"met": False}, status=504)
    return JsonResponse({"thread": threading.get_ident(), "name": threading.current_thread().name})


def boom(request):
    raise RuntimeError("view failed")


urlpatterns = [
    path("whoami", whoami),
    path("awhoami", awhoami),
    path("login", do_login),
    path("cache/put", cache_put),
    path("cache/get", cache_get),
    path("stream", stream),
    path("boom", boom),
    path("thread", thread),
]
