"""Mount with ``path("", include("taskstream.ops.urls"))``: ``/metrics``."""

from __future__ import annotations

from django.urls import path

from taskstream.ops import views

urlpatterns = [path("metrics", views.metrics, name="taskstream-metrics")]
