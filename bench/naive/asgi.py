"""ASGI entry point of the naive project: ``/ws/notify/<id>/`` → :class:`NotifyConsumer`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

django_app = get_asgi_application()

from bench.naive.consumers import NotifyConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter([path("ws/notify/<int:user_id>/", NotifyConsumer.as_asgi())]),
    }
)
