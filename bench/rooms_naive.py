"""The chat of the Channels tutorial, for ``make bench-rooms`` to compare against.

``/ws/chat/<room>/``: join ``chat_<room>`` on connect; every message received is
``group_send`` to the group, and each member's consumer forwards it. As the tutorial
has it: no authentication, no storage, no validation, no rate limit, no presence.
Run with ``DJANGO_SETTINGS_MODULE=bench.naive.settings`` (RedisChannelLayer defaults).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

django_app = get_asgi_application()


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"chat_{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(self.group, {"type": "chat.message",
                                                         "message": content["message"]})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"message": event["message"]})


application = ProtocolTypeRouter({
    "http": django_app,
    "websocket": URLRouter([path("ws/chat/<str:room>/", ChatConsumer.as_asgi())]),
})
