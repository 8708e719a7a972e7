"""ASGI entry point: Django for HTTP, the taskstream hub at /ws/."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

from asgiref.sync import sync_to_async
from channels.routing import ProtocolTypeRouter
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from django.core.exceptions import SuspiciousOperation
from django.core.handlers.exception import response_for_exception
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

django_app = get_asgi_application()

from taskstream.bodylimit import BodyLimitMiddleware  # noqa: E402
from taskstream.hub.endpoint import HubEndpoint  # noqa: E402


class StaticFiles(ASGIStaticFilesHandler):
    """Django's handler turns only Http404 into a response; a ``..`` path (a
    SuspiciousFileOperation from the finders) would be a 500: it is a 404 like any missing file."""

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        try:
            return await super().get_response_async(request)
        except SuspiciousOperation:
            return await sync_to_async(response_for_exception, thread_sensitive=False)(
                request, Http404("no such file"))


application = ProtocolTypeRouter(
    {
        # Body limits hold while bodies stream in, before Django reads them whole. The demo
        # serves its own static files; production puts a CDN or whitenoise here.
        "http": BodyLimitMiddleware(StaticFiles(django_app)),
        # One WebSocket endpoint: the hub matches its path itself (no URLRouter needed).
        "websocket": HubEndpoint(path="/ws/"),
    }
)
