"""Reads of jobs: who may see which job, lists, and the snapshot plus its topic's cursor."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs.kinds import JobKind, registered_kinds
from taskstream.jobs.models import Job
from taskstream.jobs.snapshot import job_snapshot


def job_visible_to(*, user: Any) -> QuerySet[Job]:
    """Jobs ``user`` may see over HTTP: their own; staff see every job."""
    if getattr(user, "is_staff", False):
        return Job.objects.all()
    return Job.objects.filter(owner_id=user.pk)


def job_get(*, user: Any, job_id: Any) -> Job | None:
    return job_visible_to(user=user).filter(pk=job_id).first()


def job_listed_kinds() -> dict[str, JobKind]:
    """The kinds "My jobs" lists: those registered for people to start (see :func:`job_list`)."""
    return registered_kinds()


def job_list(*, user: Any, state: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """The jobs ``user`` started, newest first ("My jobs"; staff too: everyone's is the admin's).

    The one rule of what a user started: their own top-level jobs of a kind registered with
    :func:`~taskstream.jobs.kinds.register_job_kind`, i.e. a kind people start. Jobs an app
    runs for itself (a pipeline's parent and its steps, the welcome e-mail) are owned by the
    user too but are shown on that app's page; :func:`job_get` still reads them by id.
    """
    jobs = Job.objects.filter(owner_id=user.pk, parent__isnull=True,
                              kind__in=list(job_listed_kinds()))
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
