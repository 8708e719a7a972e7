"""More staff pages of the ops app: workers, queues (with purge), jobs (search and filters)
and periodic tasks. Each is live over ``ops``: the page refetches itself when an event says
its numbers moved (static/example/ops-live.js), the workers page also reads the monitor's
summaries (static/example/ops-workers.js).

Staff is checked on every page as in :mod:`example.ops_pages`; purge is a POST with the
CSRF token, confirmed on its own page first, and audited (taskstream.ops.queue_actions).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from example.ops_pages import _staff
from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs.states import State
from taskstream.ops.api_pages import QUEUE_NAME
from taskstream.ops.broker import queue_infos
from taskstream.ops.job_search import JobFilters, job_kinds, job_search
from taskstream.ops.queue_actions import ops_queue_purge
from taskstream.ops.worker_status import worker_rows


def _live(events: list[str]) -> dict[str, Any]:
    # The cursor before the page's numbers are read: a change after them is heard.
    return {"topic": "ops", "cursor": latest_cursor("ops"), "events": events}


@login_required
@ensure_csrf_cookie
def workers(request: HttpRequest) -> HttpResponse:
    _staff(request)
    live = _live(["monitor.summary"])
    rows, reached = worker_rows()
    return render(request, "example/ops_workers.html", {
        "workers": rows, "reached": reached, "live": live, "now": timezone.now(),
        "answered": sum(1 for r in rows if r.answered)})


@login_required
def queues(request: HttpRequest) -> HttpResponse:
    _staff(request)
    live = _live(["jobs.changed", "audit.created"])
    return render(request, "example/ops_queues.html", {"queues": queue_infos(), "live": live})


@login_required
@require_http_methods(["GET", "POST"])
def queue_purge(request: HttpRequest) -> HttpResponse:
    """GET: confirm; POST: delete the queue's waiting messages and cancel its queued jobs."""
    _staff(request)
    name = (request.POST if request.method == "POST" else request.GET).get("queue", "")
    if not re.fullmatch(QUEUE_NAME, name):
        raise Http404("no such queue")
    if request.method == "GET":
        depth = next((q.depth for q in queue_infos([name], peek=False) or []), None)
        return render(request, "example/ops_purge_confirm.html", {
            "queue": name, "depth": depth})
    try:
        done = ops_queue_purge(queue=name, actor=request.user)
    except Exception as exc:  # the broker refused or is away: audited as an error
        messages.error(request, f"Could not purge {name}: {exc}")
        return redirect("ops-queues")
    text = (f"Purged {name}: {done.messages} message(s) deleted, {done.cancelled} waiting "
            f"job(s) cancelled.")
    if done.left:
        text += f" {done.left} more job(s) still queued there: purge again."
    messages.success(request, text)
    return redirect("ops-queues")


class JobFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    kind = forms.ChoiceField(required=False)
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *State.choices])
    owner = forms.CharField(required=False, max_length=150)
    since = forms.DateTimeField(required=False, label="From",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label="To",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000,
                              widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.data.get("kind") or ""
        kinds = job_kinds()
        if kind and kind not in kinds:
            kinds.append(kind)  # a kind with no jobs (any more) is still a valid filter
        self.fields["kind"].choices = [("", "Any kind"), *[(k, k) for k in kinds]]


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    _staff(request)
    live = _live(["jobs.changed", "audit.created"])
    form = JobFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "example/ops_jobs.html", {"form": form, "live": live},
                      status=400)
    data = form.cleaned_data
    filters = JobFilters(q=data["q"], kind=data["kind"], state=data["state"],
                         owner=data["owner"], since=data["since"], until=data["until"])
    found = job_search(filters=filters, page=data["page"] or 1)
    kept = {k: v for k, v in request.GET.items() if k != "page" and v}

    def page_url(number: int) -> str:
        return "?" + urlencode({**kept, "page": number})

    return render(request, "example/ops_jobs.html", {
        "form": form, "found": found, "live": live, "filters": filters,
        "newer_url": page_url(found.page - 1) if found.page > 1 else None,
        "older_url": page_url(found.page + 1) if found.page < found.pages else None,
    })


@login_required
def periodic(request: HttpRequest) -> HttpResponse:
    _staff(request)
    from taskstream.periodic.selectors import missed_recent, schedule_overview

    live = _live(["schedule.missed"])
    schedules = schedule_overview(runs_per_schedule=10)
    now = timezone.now()
    for row in schedules:
        row["next_run_at"] = _next_run(row["name"], now)
    return render(request, "example/ops_periodic.html", {
        "schedules": schedules, "missed": missed_recent(), "live": live, "now": now})


def _next_run(name: str, now: Any) -> Any:
    """When beat sends the schedule next: its schedule's estimate from the last run (in the
    past when the run is overdue)."""
    from django_celery_beat.models import PeriodicTask

    entry = PeriodicTask.objects.filter(name=name).first()
    if entry is None or not entry.enabled:
        return None
    if entry.clocked_id and entry.clocked is not None:
        return None if entry.last_run_at else entry.clocked.clocked_time
    try:
        remaining: timedelta = entry.schedule.remaining_estimate(entry.last_run_at or now)
    except Exception:  # a schedule beat itself could not use; the page shows a dash
        return None
    return now + remaining
