"""Writes on jobs: start, cancel, retry, reap. Keyword-only, each in a transaction.

Enqueueing and events happen in ``transaction.on_commit``: a worker never looks for a
row that is not committed yet, and nobody hears of a job whose transaction rolled back.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from taskstream.conf import conf
from taskstream.jobs import events
from taskstream.jobs.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidJobParams,
    JobNotAllowed,
    UnknownJobKind,
)
from taskstream.jobs.kinds import get_kind, validate_params
from taskstream.jobs.models import Job
from taskstream.jobs.states import State, sources

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger("taskstream.jobs")

# The keyword argument that carries the job id to the task (LiveTask pops it).
JOB_KWARG = "taskstream_job"


def _task(kind: str) -> Task:
    from celery import current_app

    from taskstream.jobs.kinds import discover_tasks
    from taskstream.jobs.tasks import LiveTask

    discover_tasks()
    task = current_app.tasks.get(kind)
    if task is None or not isinstance(task, LiveTask):
        raise UnknownJobKind(f"no LiveTask named {kind!r} is registered with Celery")
    return task


def _json_params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise InvalidJobParams("params must be a dict with string keys")
    if JOB_KWARG in params:
        raise InvalidJobParams(f"params may not use the reserved name {JOB_KWARG!r}")
    try:
        data: dict[str, Any] = json.loads(json.dumps(params, cls=DjangoJSONEncoder))
    except (TypeError, ValueError) as exc:
        raise InvalidJobParams(f"params must be JSON serializable: {exc}") from None
    return data


def _enqueue(job: Job) -> None:
    """Send the job's task; a broker failure fails the job instead of losing it silently."""
    try:
        options: dict[str, Any] = {"queue": job.queue} if job.queue else {}
        _task(job.kind).apply_async(kwargs={**job.params, JOB_KWARG: str(job.id)},
                                    task_id=job.celery_task_id, **options)
    except Exception as exc:
        logger.exception("could not enqueue job %s", job.id)
        now = timezone.now()
        if Job.objects.filter(pk=job.pk, state__in=[State.QUEUED, State.RETRYING],
                              celery_task_id=job.celery_task_id).update(
                state=State.FAILED, error_type=type(exc).__name__,
                error_message=f"could not enqueue: {exc}"[:10_000], finished_at=now,
                updated_at=now):
            job.refresh_from_db()
            events.job_publish(job, events.FAILED)


def _may_act(job: Job, actor: Any) -> None:
    if actor is None:
        return  # the system itself (admin actions, the shell)
    if not (getattr(actor, "is_staff", False) or actor.pk == job.owner_id):
        raise JobNotAllowed("only the job's owner or staff may do this")


def job_start(*, kind: str, owner: Any, params: dict[str, Any] | None = None,
              idempotency_key: str | None = None, parent: Job | None = None,
              queue: str | None = None) -> Job:
    """Create a queued job and enqueue its task on commit.

    With ``idempotency_key``, a second call by the same owner returns the first job
    (and enqueues nothing); the same key with another kind or params is
    :class:`IdempotencyConflict`. ``queue`` sends every run of the job to that broker
    queue instead of the task's route.
    """
    task = _task(kind)
    registered = get_kind(kind)
    data = validate_params(registered, params) if registered else _json_params(params)
    data = _json_params(data)
    try:
        inspect.signature(task.run).bind(**data)
    except TypeError as exc:
        raise InvalidJobParams(f"params do not fit {kind}: {exc}") from None
    if idempotency_key is not None:
        idempotency_key = str(idempotency_key)
        if not 1 <= len(idempotency_key) <= 200:
            raise InvalidJobParams("idempotency_key must be 1 to 200 characters")
        existing = _same_key(owner, idempotency_key, kind, data)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            job = Job.objects.create(owner=owner, kind=kind, params=data, parent=parent,
                                     idempotency_key=idempotency_key, queue=queue or "",
                                     celery_task_id=str(uuid.uuid4()))
            transaction.on_commit(lambda: _announce_and_enqueue(job))
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = _same_key(owner, idempotency_key, kind, data)  # lost a race for the key
        if existing is None:
            raise
        return existing
    return job


def _same_key(owner: Any, key: str, kind: str, params: dict[str, Any]) -> Job | None:
    existing = Job.objects.filter(owner=owner, idempotency_key=key).first()
    if existing is not None and (existing.kind != kind or existing.params != params):
        raise IdempotencyConflict("this idempotency key was used for another kind or params")
    return existing


def _announce_and_enqueue(job: Job, event: str = events.CREATED) -> None:
    events.job_publish(job, event)
    _enqueue(job)


def _revoke(task_id: str, *, terminate: bool = False) -> None:
    from celery import current_app

    try:
        current_app.control.revoke(task_id, terminate=terminate, signal="SIGTERM")
    except Exception:
        logger.exception("could not revoke task %s", task_id)


def job_cancel(*, job: Job, actor: Any = None) -> Job:
    """Cancel a job: a queued or retrying one never runs; a running one stops at its next
    checkpoint (or at once, terminated, when its task sets ``terminate_on_cancel``)."""
    _may_act(job, actor)
    for _ in range(3):  # the state may change under us; each try is one conditional UPDATE
        job.refresh_from_db()
        now = timezone.now()
        if job.state in (State.QUEUED, State.RETRYING):
            if Job.objects.filter(pk=job.pk, state=job.state).update(
                    state=State.CANCELLED, cancel_requested=True, run_token="",
                    finished_at=now, updated_at=now, eta=None):
                job.refresh_from_db()
                transaction.on_commit(partial(_after_cancel, job))
                return job
        elif job.state == State.RUNNING:
            if Job.objects.filter(pk=job.pk, state=State.RUNNING).update(
                    cancel_requested=True, updated_at=now):
                if getattr(_task_or_none(job.kind), "terminate_on_cancel", False):
                    return _terminate(job)
                job.refresh_from_db()
                return job
        else:
            raise IllegalTransition(f"a {job.state} job cannot be cancelled")
    raise IllegalTransition("the job kept changing state; try again")


def _after_cancel(job: Job, *, terminate: bool = False) -> None:
    _revoke(job.celery_task_id, terminate=terminate)
    events.job_publish(job, events.CANCELLED)


def _task_or_none(kind: str) -> Task | None:
    try:
        return _task(kind)
    except UnknownJobKind:
        return None


def _terminate(job: Job) -> Job:
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, state=State.RUNNING).update(
            state=State.CANCELLED, run_token="", finished_at=now, updated_at=now,
            heartbeat_at=None):
        job.refresh_from_db()
        transaction.on_commit(partial(_after_cancel, job, terminate=True))
    else:
        job.refresh_from_db()
    return job


def job_retry(*, job: Job, actor: Any = None) -> Job:
    """Queue a failed or cancelled job again (owner or staff); emits ``job.retrying``."""
    _may_act(job, actor)
    if _task_or_none(job.kind) is None:
        # A canvas parent (a pipeline) has no task of its own: its owner app retries it.
        raise IllegalTransition(f"a {job.kind!r} job is retried through its own app")
    now = timezone.now()
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, state__in=sources(State.QUEUED)).update(
            state=State.QUEUED, celery_task_id=task_id, run_token="", cancel_requested=False,
            result=None, error_type="", error_message="", error_traceback="",
            progress_current=0, progress_total=None, progress_message="", finished_at=None,
            eta=None, heartbeat_at=None, updated_at=now)
        job.refresh_from_db()
        if not updated:
            raise IllegalTransition(f"a {job.state} job cannot be retried")
        transaction.on_commit(partial(_announce_and_enqueue, job, events.RETRYING))
    return job


WORKER_LOST = "WorkerLost"


def job_reap() -> int:
    """Re-queue running jobs whose heartbeat stopped, and retries whose message was lost.

    Beat runs this every ``JOB_REAPER_INTERVAL`` seconds. Each job moves with a
    conditional UPDATE, so two reapers never re-queue the same job twice; the new run
    gets a new task id, so a late redelivery of the old message finds nothing to do.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=conf.JOB_HEARTBEAT_TIMEOUT)
    candidates = Job.objects.filter(
        Q(state=State.RUNNING, heartbeat_at__lt=stale)
        | Q(state=State.RUNNING, heartbeat_at__isnull=True, updated_at__lt=stale)
        | Q(state=State.RETRYING, eta__lt=stale)
    # A canvas parent (a pipeline) has no run of its own: it lives while its children do.
    ).exclude(children__state__in=[State.QUEUED, State.RUNNING, State.RETRYING]).values_list(
        "pk", "state", "celery_task_id", "kind")[:500]
    count = 0
    for pk, state, old_task_id, kind in candidates:
        if _task_or_none(kind) is None:
            continue  # no LiveTask runs this kind: nothing to send again
        task_id = str(uuid.uuid4())
        lost = state == State.RUNNING
        fields: dict[str, Any] = {"state": State.RETRYING, "run_token": "", "eta": now,
                                  "celery_task_id": task_id, "updated_at": now}
        if lost:
            fields |= {"error_type": WORKER_LOST, "error_traceback": "",
                       "error_message": "the worker running this job stopped sending "
                                        "heartbeats; it runs again"}
        still = Q(pk=pk, state=state, celery_task_id=old_task_id)
        if lost:  # unless it came back to life since the SELECT
            still &= Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
        if not Job.objects.filter(still).update(**fields):
            continue
        job = Job.objects.get(pk=pk)
        if job.cancel_requested:
            job_cancel(job=job)
            continue
        if lost:
            events.job_publish(job, events.RETRYING)
        _enqueue(job)
        count += 1
    if count:
        logger.warning("reaper re-queued %d job(s)", count)
    return count
