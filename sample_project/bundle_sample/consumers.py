"""WebSocket consumers."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


def describe(user, tenant):
    """The JSON body shared by ``/whoami`` and ``/ws/whoami/``."""
    authenticated = bool(user is not None and user.is_authenticated)
    return {
        "authenticated": authenticated,
        "username": user.get_username() if authenticated else None,
        "tenant": tenant,
    }


class WhoAmIConsumer(AsyncJsonWebsocketConsumer):
    """Sends who the connection is authenticated as, on connect and on every message."""

    async def connect(self):
        await self.accept()
        await self.send_whoami()

    async def receive_json(self, content, **kwargs):
        await self.send_whoami()

    async def send_whoami(self):
        await self.send_json(describe(self.scope.get("user"), self.scope.get("tenant")))
