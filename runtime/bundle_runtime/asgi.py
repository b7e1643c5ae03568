"""ASGI entry point for HTTP that runs Django's middleware chain in one thread hop.

``django.core.asgi.get_asgi_application()`` loads the middleware in async
mode. Every synchronous middleware (all of Django's own, and most projects')
then runs each ``process_request``/``process_response`` through its own
``sync_to_async`` call, and a sync view is one more: about fifteen thread
hops per request with the default middleware. That is most of the CPU a
simple page costs under an ASGI server (measured on the sample's pages:
about 2x the requests/s of the plain handler, see the README).

``get_asgi_application()`` here returns a handler that keeps everything the
plain one does around the request (body reading, disconnect handling,
``request_started``/``request_finished``, streaming responses, one thread
per request) and only loads the middleware chain in sync mode, running the
whole chain and the view in a single ``sync_to_async`` call.

Use it in place of Django's in the project's ``asgi.py``::

    from bundle_runtime.asgi import get_asgi_application
    django_asgi_app = get_asgi_application()

Keep Django's handler when the project's HTTP views or middleware are
async (they would be run through ``async_to_sync`` here: correct, slower).
WebSockets are unaffected: they go through Channels as before.
"""

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

__all__ = ["SyncChainASGIHandler", "get_asgi_application"]


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain loaded in sync mode."""

    def load_middleware(self, is_async=False):
        # ASGIHandler.__init__ asks for the async chain; build the sync one.
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        # BaseHandler.get_response: URLconf reset, the whole middleware chain
        # and the view, request.close registered as a resource closer, error
        # responses logged. Thread-sensitive like Django's own sync views: the
        # request's thread (ThreadSensitiveContext) also runs response.close().
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application():
    """Set Django up and return the HTTP handler (like django.core.asgi's)."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
