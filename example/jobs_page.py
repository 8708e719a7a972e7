"""The "My jobs" demo page: rendered from snapshots, then live over ``user:<id>``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs.selectors import job_list, job_listed_kinds
from taskstream.jobs.snapshot import job_snapshot

PAGE_JOBS = 20


@login_required
@ensure_csrf_cookie  # the page's script posts to /api/jobs/ with the CSRF cookie
def jobs_page(request: HttpRequest) -> HttpResponse:
    topic = f"user:{request.user.pk}"
    # The cursor before the rows: the page subscribes since it and misses nothing.
    cursor = latest_cursor(topic)
    jobs = [job_snapshot(job) for job in job_list(user=request.user)[:PAGE_JOBS]]
    return render(request, "example/jobs.html", {
        "topic": topic,
        "initial": {"topic": topic, "cursor": cursor, "jobs": jobs, "limit": PAGE_JOBS,
                    # Live events of other kinds (a pipeline, the welcome e-mail) are not listed.
                    "kinds": {name: kind.label for name, kind in job_listed_kinds().items()}},
    })
