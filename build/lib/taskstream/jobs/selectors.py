"""Reads of jobs: who may see which job, lists, and the snapshot plus its topic's cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from taskstream.conf import conf
from taskstream.hub.cursors_api import latest_cursor_or_none
from taskstream.hub.history import topic_history
from taskstream.jobs import events
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


def job_kind_label(kind: str) -> str:
    """A person's name for a job kind: its registered label, else one made from its name."""
    found = registered_kinds().get(kind)
    if found is not None:
        return found.label
    # "taskstream.notifications.send_welcome_email" -> "Send welcome email"
    tail = kind.rsplit(".", 1)[-1].replace("_", " ").strip()
    return tail[:1].upper() + tail[1:] if tail else kind


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
    While Redis does not answer the cursor is ``None`` (within a second): the snapshot
    still comes from the database.
    """
    cursor = latest_cursor_or_none(f"job:{job_id}")
    job = job_get(user=user, job_id=job_id)
    if job is None:
        return None
    data = job_snapshot(job, with_traceback=bool(getattr(user, "is_staff", False)))
    data["cursor"] = cursor
    return data


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    count: int
    page: int
    pages: int


def job_page(*, user: Any, state: str | None = None, kind: str | None = None,
             page: int = 1) -> JobPage:
    """One page (``JOB_PAGE_SIZE`` jobs) of :func:`job_list`; a page past the end is empty."""
    jobs = job_list(user=user, state=state, kind=kind)
    size = conf.JOB_PAGE_SIZE
    count = jobs.count()
    items = list(jobs[(page - 1) * size: page * size])
    return JobPage(jobs=items, count=count, page=page, pages=max(1, -(-count // size)))


def job_children(*, job: Job, limit: int = 500) -> list[Job]:
    """The canvas children of ``job`` (a pipeline's steps and chunks), in the order made."""
    return list(job.children.order_by("created_at", "pk")[:limit])


_RUN_EVENTS = frozenset({events.STARTED, events.RETRYING, events.SUCCEEDED, events.FAILED,
                         events.CANCELLED})


@dataclass(frozen=True)
class JobAttempts:
    attempts: list[dict[str, Any]]
    # False when the job's log no longer reaches back to its first event (LOG_MAX_AGE).
    complete: bool


def job_attempts(*, job: Job) -> JobAttempts:
    """Each run of ``job``: number, start, end, outcome and error, oldest first.

    Read back from the job's own topic log (its ``job.started`` and outcome events), so
    it is the retained window: older runs of a long-lived job are gone with their events.
    """
    history = topic_history(job.topic, events=_RUN_EVENTS)
    attempts: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for logged in history.events:
        data = logged.data
        if logged.event == events.STARTED:
            if current is not None and current["outcome"] == "running":
                current["outcome"] = "lost"  # taken over by another run without an outcome
            # The event's time: the snapshot's started_at is the job's first start.
            current = {"number": data.get("attempt"), "started_at": logged.ts,
                       "finished_at": None, "outcome": "running", "error": None}
            attempts.append(current)
        elif current is not None and current["outcome"] == "running":
            current["outcome"] = logged.event.removeprefix("job.")
            current["finished_at"] = logged.ts
            error = data.get("error")
            if error:
                current["error"] = {"type": error.get("type", ""),
                                    "message": error.get("message", "")}
    return JobAttempts(attempts=attempts, complete=history.complete)
