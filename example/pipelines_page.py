"""Demo pages: "Pipelines" (upload a CSV, watch each step and chunk live, download the
report) and "Schedules" (beat schedules with their run history and missed runs)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from taskstream.conf import conf
from taskstream.hub.cursors_api import latest_cursor
from taskstream.periodic.selectors import missed_recent, schedule_overview
from taskstream.pipelines.selectors import pipeline_list, pipeline_snapshot
from taskstream.pipelines.services import PIPELINE_KIND


@login_required
@ensure_csrf_cookie  # the page's script posts uploads with the CSRF cookie
def pipelines_page(request: HttpRequest) -> HttpResponse:
    topic = f"user:{request.user.pk}"
    cursor = latest_cursor(topic)  # before the state: subscribing since it misses nothing
    recent = list(pipeline_list(user=request.user)[:10])
    return render(request, "example/pipelines.html", {
        "max_mb": conf.PIPELINE_MAX_UPLOAD_BYTES / (1024 * 1024),
        "initial": {"topic": topic, "cursor": cursor, "kind": PIPELINE_KIND,
                    "recent": [pipeline_snapshot(p, with_chunks=False) for p in recent],
                    "current": pipeline_snapshot(recent[0]) if recent else None},
    })


@login_required
def schedules_page(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        # Signed in but not staff: say so (the admin's login page would ask to log in again).
        raise PermissionDenied("The schedules are for staff accounts.")
    return render(request, "example/schedules.html", {
        "schedules": schedule_overview(), "missed": missed_recent(),
        "initial": {"topic": "ops", "cursor": latest_cursor("ops")},
    })
