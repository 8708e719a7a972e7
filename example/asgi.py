"""ASGI entry point: Django for HTTP, the taskstream hub at /ws/."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

from channels.routing import ProtocolTypeRouter
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

from taskstream.bodylimit import BodyLimitMiddleware  # noqa: E402
from taskstream.hub.endpoint import HubEndpoint  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Body limits hold while bodies stream in, before Django reads them whole. The demo
        # serves its own static files; production puts a CDN or whitenoise here.
        "http": BodyLimitMiddleware(ASGIStaticFilesHandler(django_app)),
        # One WebSocket endpoint: the hub matches its path itself (no URLRouter needed).
        "websocket": HubEndpoint(path="/ws/"),
    }
)
