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
``request_started``/``request_finished``, streaming responses, each
request's sync code on a thread of its own) with two changes:

* the middleware chain is loaded in sync mode: the whole chain and the view
  run in a single ``sync_to_async`` call;
* the request's thread is reused. Django starts a thread for every request
  (``ThreadSensitiveContext()``) and joins it at the end; here each request
  takes an idle single-thread executor (or creates one) and hands it back
  once everything it queued has run, through asgiref's
  ``ThreadSensitiveContext(executor=...)`` (asgiref 3.13+; older asgiref
  keeps Django's thread per request). A thread never serves two requests at
  the same time, so thread-bound state (database connections) stays per
  request as before.

Use it in place of Django's in the project's ``asgi.py``::

    from bundle_runtime.asgi import get_asgi_application
    django_asgi_app = get_asgi_application()

Keep Django's handler when the project's HTTP views or middleware are
async (they would be run through ``async_to_sync`` here: correct, slower).
WebSockets are unaffected: they go through Channels as before.
"""

import collections
import inspect
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

__all__ = ["SyncChainASGIHandler", "get_asgi_application"]

#: asgiref 3.13 added ThreadSensitiveContext(executor=...): a context that runs
#: on a caller-owned executor and does not shut it down on exit.
REUSES_THREADS = "executor" in inspect.signature(ThreadSensitiveContext).parameters


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain loaded in sync mode,
    run on a reused per-request thread (see the module docstring)."""

    #: Idle executors kept for the next requests; more are created when more
    #: requests run at once, and those beyond this number are shut down.
    max_idle_threads = 32

    def __init__(self):
        super().__init__()
        # deque: append/pop are atomic, and executors come back from their
        # own thread (see _release).
        self._idle_executors = collections.deque()

    async def __call__(self, scope, receive, send):
        if not REUSES_THREADS:
            return await super().__call__(scope, receive, send)
        if scope["type"] != "http":
            # Same refusal as Django's handler.
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            executor = self._idle_executors.pop()
        except IndexError:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._release(executor)

    def _release(self, executor):
        """Make ``executor`` idle once the work already queued on it is done.

        A request whose client went away can leave its view running on the
        thread after ``handle()`` returns (Django cancels the coroutine, not
        the thread). The marker runs after that work, so the next request
        never waits behind it.
        """

        def back(_future):
            if len(self._idle_executors) < self.max_idle_threads:
                self._idle_executors.append(executor)
            else:
                executor.shutdown(wait=False)

        executor.submit(int).add_done_callback(back)

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
