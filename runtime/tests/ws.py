"""WebSocket helper shared by the runtime tests."""

from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings


async def first_message(app, path, host, cookie):
    """Connect to ``app`` at ``path`` with ``Host: host`` and the session cookie (if any); return the first JSON."""
    headers = [(b"host", host.encode())]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(app, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    try:
        return await communicator.receive_json_from()
    finally:
        await communicator.disconnect()
