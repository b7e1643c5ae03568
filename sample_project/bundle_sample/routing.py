"""WebSocket routes."""

from django.urls import path

from bundle_sample.consumers import WhoAmIConsumer

websocket_urlpatterns = [
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
]
