"""The "My jobs" demo pages: the list and one job, rendered from snapshots, then live.

The list subscribes to ``user:<id>`` (every job of the user on one topic); a job's page to
``job:<id>``, and to ``user:<id>`` too when it has children (a pipeline's steps report on
their own topics, which roll up to the owner's).
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs.selectors import (
    job_attempts,
    job_children,
    job_detail,
    job_get,
    job_kind_label,
    job_listed_kinds,
    job_page,
)
from taskstream.jobs.snapshot import job_snapshot
from taskstream.jobs.states import State


class JobFilterForm(forms.Form):
    state = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, data: Any, kinds: dict[str, str]) -> None:
        super().__init__(data)
        self.fields["state"].choices = [("", "Any state"), *State.choices]  # type: ignore[attr-defined]
        self.fields["kind"].choices = [("", "Any kind"), *kinds.items()]  # type: ignore[attr-defined]


def _labelled(job: Any) -> dict[str, Any]:
    return {**job_snapshot(job), "label": job_kind_label(job.kind)}


@login_required
@ensure_csrf_cookie  # the page's script posts to /api/jobs/ with the CSRF cookie
def jobs_page(request: HttpRequest) -> HttpResponse:
    kinds = {name: kind.label for name, kind in job_listed_kinds().items()}
    form = JobFilterForm(request.GET, kinds)
    if not form.is_valid():
        return render(request, "example/jobs.html", {"form": form, "kinds": kinds}, status=400)
    state, kind = form.cleaned_data["state"] or None, form.cleaned_data["kind"] or None
    topic = f"user:{request.user.pk}"
    # The cursor before the rows: the page subscribes since it and misses nothing.
    cursor = latest_cursor(topic)
    found = job_page(user=request.user, state=state, kind=kind,
                     page=form.cleaned_data["page"] or 1)
    filters = {k: v for k, v in (("state", state), ("kind", kind)) if v}

    def page_url(number: int) -> str:
        return "?" + urlencode({**filters, "page": number})

    return render(request, "example/jobs.html", {
        "form": form,
        "kinds": kinds,
        "found": found,
        "filtered": bool(filters),
        "newer_url": page_url(found.page - 1) if found.page > 1 else None,
        "older_url": page_url(found.page + 1) if found.page < found.pages else None,
        "initial": {"topic": topic, "cursor": cursor, "jobs": [_labelled(j) for j in found.jobs],
                    "filters": filters, "page": found.page, "count": found.count,
                    # Live events of other kinds (a pipeline, the welcome e-mail) are not
                    # listed: the rule is selectors.job_list's.
                    "kinds": kinds},
    })


def _audit_of(job: Any) -> list[Any] | None:
    """Who cancelled or retried the job (the ops app's trail), when that app is installed."""
    if not apps.is_installed("taskstream.ops"):
        return None
    from taskstream.ops.selectors import audit_for

    return audit_for(target_type="job", target_id=str(job.pk))


def _pipeline_of(job: Any) -> Any:
    """The pipeline a parent job runs, so its page can link there (its retry lives there)."""
    if not apps.is_installed("taskstream.pipelines"):
        return None
    from taskstream.pipelines.models import Pipeline

    return Pipeline.objects.filter(job_id=job.pk).first()


@login_required
@ensure_csrf_cookie
def job_page_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    detail = job_detail(job_id=job_id, user=request.user)
    job = job_get(user=request.user, job_id=job_id)
    if detail is None or job is None:
        raise Http404("no such job")  # someone else's job: not even its existence
    kinds = job_listed_kinds()
    user_topic = f"user:{job.owner_id}"
    user_cursor = latest_cursor(user_topic)  # before the children, as for the list
    children = job_children(job=job)
    attempts = job_attempts(job=job)
    return render(request, "example/job_detail.html", {
        "job": job,
        "label": job_kind_label(job.kind),
        "params": json.dumps(job.params, indent=2, sort_keys=True),
        "listed": job.kind in kinds,
        "pipeline": _pipeline_of(job),
        "audit": _audit_of(job),
        "initial": {
            "job": {**detail, "label": job_kind_label(job.kind)},
            "listed": job.kind in kinds,
            "attempts": attempts.attempts,
            "attemptsComplete": attempts.complete,
            "children": [_labelled(c) for c in children],
            # A parent's children report on their own topics; the owner's topic has them all.
            "userTopic": user_topic if children and job.owner_id == request.user.pk else None,
            "userCursor": user_cursor,
        },
    })
