"""Writes on jobs: create, start, cancel, retry, progress of canvas parents, reap.

Keyword-only, each in a transaction. Every state change goes through
:func:`taskstream.jobs.transitions.move` (the table is the law); enqueueing and events
happen in ``transaction.on_commit``: a worker never looks for a row that is not committed
yet, and nobody hears of a job whose transaction rolled back.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from taskstream.conf import conf
from taskstream.jobs import events, transitions
from taskstream.jobs.delivery import JOB_KWARG, job_task_kwargs
from taskstream.jobs.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidJobParams,
    JobNotAllowed,
    TooManyJobs,
    UnknownJobKind,
)
from taskstream.jobs.kinds import get_kind, validate_params
from taskstream.jobs.lifecycle import error_fields
from taskstream.jobs.models import Job
from taskstream.jobs.states import ACTIVE, State

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger("taskstream.jobs")

__all__ = ["JOB_KWARG", "job_cancel", "job_create", "job_move", "job_progress", "job_reap",
           "job_retry", "job_start"]


def _task(kind: str) -> Task:
    from celery import current_app

    from taskstream.jobs.kinds import discover_tasks
    from taskstream.jobs.live import LiveTask

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


def _send(job_id: Any, kind: str, params: Mapping[str, Any], task_id: str, queue: str) -> None:
    """Send a run's message. A broker that refuses it leaves the job queued (or retrying)
    as it is: the reaper sends it again (see :func:`job_reap`), so it is not lost.

    With ``CELERY_TASK_ALWAYS_EAGER`` the task runs here, inline: an error that leaves it
    (``task_eager_propagates``) is the task's own and reaches the caller, as in a test."""
    task: Task | None = None
    try:
        task = _task(kind)
        options: dict[str, Any] = {"queue": queue} if queue else {}
        task.apply_async(kwargs=job_task_kwargs(job_id, params), task_id=task_id, **options)
    except Exception:
        if task is not None and task.app.conf.task_always_eager:
            raise
        logger.exception("could not enqueue job %s; the reaper sends it again", job_id)


def _send_on_commit(job: Job) -> None:
    # The values as they are now: the caller's instance may change before the commit.
    transaction.on_commit(partial(_send, job.pk, job.kind, dict(job.params),
                                  job.celery_task_id, job.queue))


def _may_act(job: Job, actor: Any) -> None:
    if actor is None:
        return  # the system itself (admin actions, the shell)
    if not (getattr(actor, "is_staff", False) or actor.pk == job.owner_id):
        raise JobNotAllowed("only the job's owner or staff may do this")


def job_create(*, kind: str, owner: Any = None, owner_id: Any = None,
               params: dict[str, Any] | None = None, parent: Job | None = None,
               queue: str | None = None, idempotency_key: str | None = None,
               progress_message: str = "", announce: bool = True) -> Job:
    """Insert a queued job and (with ``announce``) publish ``job.created`` after the commit.

    Nothing is sent to a worker: :func:`job_start` does that for a job with a task of its
    own; an app that runs a canvas (pipelines) creates its parent and steps with this.
    """
    with transaction.atomic():
        who = {"owner": owner} if owner is not None else {"owner_id": owner_id}
        job = Job.objects.create(
            **who, kind=kind, params=_json_params(params), parent=parent, queue=queue or "",
            idempotency_key=idempotency_key, celery_task_id=str(uuid.uuid4()),
            progress_message=progress_message)
        if announce:
            events.job_announce(job, events.CREATED)
        transitions.note_created(job)
    return job


def job_start(*, kind: str, owner: Any, params: dict[str, Any] | None = None,
              idempotency_key: str | None = None, parent: Job | None = None,
              queue: str | None = None, max_active: int | None = None) -> Job:
    """Create a queued job and enqueue its task on commit.

    With ``idempotency_key``, a second call by the same owner returns the first job
    (and enqueues nothing); the same key with another kind or params is
    :class:`IdempotencyConflict`. ``queue`` sends every run of the job to that broker
    queue instead of the task's route. ``max_active``: refuse with :class:`TooManyJobs`
    when the owner already has that many top-level jobs queued, retrying or running (a
    soft limit: two starts at the same instant may both pass it).
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
    if max_active is not None and Job.objects.filter(
            owner=owner, parent__isnull=True, state__in=list(ACTIVE)).count() >= max_active:
        raise TooManyJobs(f"at most {max_active} unfinished jobs at a time; wait for one "
                          "to finish or cancel one")
    try:
        with transaction.atomic():
            job = job_create(kind=kind, owner=owner, params=data, parent=parent,
                             idempotency_key=idempotency_key, queue=queue, announce=False)
            # The worker's message goes first after the commit, job.created right after:
            # the run does not wait for the event's round trip to Redis (on a loaded machine
            # a third of enqueue → first event), and a run that claims the job before
            # job.created is out sends it first (the outbox's per-topic order).
            _send_on_commit(job)
            events.job_announce(job, events.CREATED)
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
    waiting = (State.QUEUED, State.RETRYING)
    for _ in range(3):  # the state may change under us; each try is one conditional UPDATE
        job.refresh_from_db()
        if job.state in waiting:
            if transitions.move(job, State.CANCELLED, only_from=waiting, values={
                    "cancel_requested": True, "run_token": "", "eta": None}):
                transaction.on_commit(partial(_revoke, job.celery_task_id))
                return job
        elif job.state == State.RUNNING:
            # Not a move: the run sees the request at its next checkpoint and ends itself.
            if transitions.update_running(job.pk, None, {"cancel_requested": True,
                                                         "updated_at": timezone.now()}):
                if getattr(_task_or_none(job.kind), "terminate_on_cancel", False):
                    return _terminate(job)
                job.refresh_from_db()
                return job
        else:
            raise IllegalTransition(f"a {job.state} job cannot be cancelled")
    raise IllegalTransition("the job kept changing state; try again")


def _task_or_none(kind: str) -> Task | None:
    try:
        return _task(kind)
    except UnknownJobKind:
        return None


def _terminate(job: Job) -> Job:
    try:
        moved = transitions.move(job, State.CANCELLED, only_from=(State.RUNNING,),
                                 values={"run_token": "", "heartbeat_at": None})
    except IllegalTransition:
        moved = False  # it finished meanwhile
    if moved:
        transaction.on_commit(partial(_revoke, job.celery_task_id, terminate=True))
    else:
        job.refresh_from_db()
    return job


def _fresh_run_fields() -> dict[str, Any]:
    """What a job queued again starts from: a new message, no result, error or progress."""
    return {"celery_task_id": str(uuid.uuid4()), "run_token": "", "cancel_requested": False,
            "result": None, "progress_current": 0, "progress_total": None,
            "progress_message": "", "eta": None, "heartbeat_at": None, **error_fields(None)}


def job_retry(*, job: Job, actor: Any = None, send: bool = True,
              rerun_succeeded: bool = False) -> Job:
    """Queue a failed or cancelled job again (owner or staff); emits ``job.retrying``.

    For a canvas that sends its steps itself: ``send=False`` leaves sending the message to
    it, ``rerun_succeeded`` queues a succeeded step again (its output was lost).
    """
    _may_act(job, actor)
    if _task_or_none(job.kind) is None:
        # A canvas parent (a pipeline) has no task of its own: its owner app retries it.
        raise IllegalTransition(f"a {job.kind!r} job is retried through its own app")
    with transaction.atomic():
        try:
            waiting = (State.FAILED, State.CANCELLED)
            moved = transitions.move(job, State.QUEUED, values=_fresh_run_fields(),
                                     only_from=(*waiting, State.SUCCEEDED) if rerun_succeeded
                                     else waiting)
        except IllegalTransition:
            moved = False
        if not moved:
            job.refresh_from_db()
            raise IllegalTransition(f"a {job.state} job cannot be retried")
        if send:
            _send_on_commit(job)
    return job


def job_move(*, job: Job, target: State, values: Mapping[str, Any] | None = None,
             only_from: Collection[str] | None = None) -> bool:
    """Move a job that has no task of its own (a canvas parent such as a pipeline) to
    ``target``, with ``values``, and announce it after the commit; whether it moved.

    The table decides (:mod:`taskstream.jobs.states`): :class:`IllegalTransition` when
    the job's state may not become ``target``. ``job`` is reloaded when it moved.
    """
    return transitions.move(job, target, values=values, only_from=only_from)


def job_progress(*, job: Job, current: int = 0, total: int | None = None,
                 message: str = "") -> bool:
    """Store a running job's progress (and heartbeat) and publish ``job.progress``; for
    jobs whose progress is not reported by a run of their own (a canvas parent)."""
    now = timezone.now()
    if not transitions.update_running(job.pk, None, {
            "progress_current": current, "progress_total": total,
            "progress_message": message[:500], "heartbeat_at": now, "updated_at": now}):
        return False
    job.refresh_from_db()
    events.job_publish(job, events.PROGRESS)
    return True


WORKER_LOST = "WorkerLost"


def job_reap(*, now: datetime | None = None) -> int:
    """Send again the jobs whose run or message was lost; the number of jobs sent.

    Beat runs this every ``JOB_REAPER_INTERVAL`` seconds (``now``: reap as of that time).

    * a running job whose heartbeat is older than ``JOB_HEARTBEAT_TIMEOUT`` (its worker
      died) becomes retrying, with ``job.retrying`` and the error ``WorkerLost``;
    * a retrying job whose next run is that much overdue (its retry message was lost);
    * a top-level queued job not claimed for ``JOB_QUEUED_TIMEOUT`` (its message was
      taken by a killed worker, lost in a broker restart, or never sent because the web
      process died after the commit). Steps of a canvas are its parent app's to send.

    Each gets a new task id, with a conditional UPDATE on the old one: two reapers never
    send a job twice, and the old message, should it turn up, is not run (a claim takes
    only the current task id). So a job never runs twice at once.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=conf.JOB_HEARTBEAT_TIMEOUT)
    unclaimed = now - timedelta(seconds=conf.JOB_QUEUED_TIMEOUT)
    candidates = Job.objects.filter(
        Q(state=State.RUNNING, heartbeat_at__lt=stale)
        | Q(state=State.RUNNING, heartbeat_at__isnull=True, updated_at__lt=stale)
        | Q(state=State.RETRYING, eta__lt=stale)
        | Q(state=State.QUEUED, parent__isnull=True, updated_at__lt=unclaimed)
    # A canvas parent (a pipeline) has no run of its own: it lives while its children do.
    ).exclude(children__state__in=list(ACTIVE)).values_list(
        "pk", "state", "celery_task_id", "kind")[:500]
    count = 0
    for pk, state, old_task_id, kind in candidates:
        if _task_or_none(kind) is None:
            continue  # no LiveTask runs this kind: nothing to send again
        task_id = str(uuid.uuid4())
        job = transitions.stub(pk)
        if state == State.RUNNING:
            try:
                moved = transitions.move(
                    job, State.RETRYING, only_from=(State.RUNNING,), task_id=old_task_id,
                    stale_before=stale, now=now, values={
                        "run_token": "", "eta": now, "celery_task_id": task_id,
                        "error_type": WORKER_LOST, "error_traceback": "",
                        "error_message": "the worker running this job stopped sending "
                                         "heartbeats; it runs again"})
            except IllegalTransition:
                moved = False
            if not moved:
                continue  # it finished, or came back to life, since the SELECT
            if job.cancel_requested:
                job_cancel(job=job)
                continue
        else:
            # Not a move: the same state with a new message (and the next look due later).
            if not Job.objects.filter(pk=pk, state=state, celery_task_id=old_task_id).update(
                    celery_task_id=task_id, updated_at=now,
                    eta=now if state == State.RETRYING else None):
                continue
            job = Job.objects.get(pk=pk)
        _send(job.pk, job.kind, job.params, job.celery_task_id, job.queue)
        count += 1
    if count:
        logger.warning("reaper sent %d job(s) again", count)
    return count
