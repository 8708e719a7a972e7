"""Reads of jobs: who may see which job, lists, and the snapshot plus its topic's cursor."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs.models import Job
from taskstream.jobs.snapshot import job_snapshot


def job_visible_to(*, user: Any) -> QuerySet[Job]:
    """Jobs ``user`` may see over HTTP: their own; staff see every job."""
    if getattr(user, "is_staff", False):
        return Job.objects.all()
    return Job.objects.filter(owner_id=user.pk)


def job_get(*, user: Any, job_id: Any) -> Job | None:
    return job_visible_to(user=user).filter(pk=job_id).first()


def job_list(*, user: Any, state: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """The user's own top-level jobs, newest first (staff too: everyone's is the admin's).

    Children of a canvas (a pipeline's steps and chunks) roll up into their parent and
    are listed by it, not here.
    """
    jobs = Job.objects.filter(owner_id=user.pk, parent__isnull=True)
    if state:
        jobs = jobs.filter(state=state)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs.order_by("-created_at", "-pk")


def job_detail(*, job_id: Any, user: Any) -> dict[str, Any] | None:
    """The job's snapshot with the cursor of ``job:<id>`` read just before it.

    Cursor first, then the row: every event published after the snapshot was read has
    a later cursor, so subscribing ``since`` it leaves no gap. An event replayed that the
    snapshot already shows carries the same state again, so a page applies it harmlessly.
    """
    cursor = latest_cursor(f"job:{job_id}")
    job = job_get(user=user, job_id=job_id)
    if job is None:
        return None
    data = job_snapshot(job, with_traceback=bool(getattr(user, "is_staff", False)))
    data["cursor"] = cursor
    return data
