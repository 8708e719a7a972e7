from django.contrib import admin
from django.urls import path

from example import live
from taskstream.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("live/", live.live_page, name="live"),
    path("live/ping/", live.live_ping, name="live-ping"),
]
