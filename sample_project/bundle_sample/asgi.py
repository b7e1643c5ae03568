"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

# Django's HTTP handling with the (sync) middleware chain in one thread hop:
# about 2x the requests/s of django.core.asgi's handler (bundle_runtime.asgi).
from bundle_runtime.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bundle_sample.settings")
# Initialise Django (apps, settings) before importing consumers and models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from bundle_sample.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
