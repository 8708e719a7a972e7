"""One run of a job inside a worker: claim, progress, heartbeat, and the way out.

Every write is a conditional UPDATE on the run's token while the job is ``running``:
a run that lost its job (to a redelivered message or to the reaper) writes nothing, so
whatever happens to workers, a job reaches one terminal state once, with one event.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import traceback as tb
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from taskstream.conf import conf
from taskstream.jobs import events, transitions
from taskstream.jobs.event_batch import job_publish_events
from taskstream.jobs.exceptions import IllegalTransition, JobCancelled, JobSuperseded
from taskstream.jobs.models import Job
from taskstream.jobs.outage import UNREACHABLE, discard_connection, retry_unreachable
from taskstream.jobs.snapshot import job_snapshot
from taskstream.jobs.states import State

logger = logging.getLogger("taskstream.jobs")

_MESSAGE_MAX = 500


def error_fields(exc: BaseException | None, *, with_traceback: bool = True) -> dict[str, str]:
    if exc is None:
        return {"error_type": "", "error_message": "", "error_traceback": ""}
    text = "".join(tb.format_exception(exc)) if with_traceback else ""
    return {"error_type": type(exc).__name__[:200], "error_message": str(exc)[:10_000],
            "error_traceback": text[:100_000]}


class Run:
    """The worker's handle on a claimed job: progress coalescing and heartbeats."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.token = job.run_token
        # `lock` guards `pending` for an instant; `io_lock` orders this run's writes and
        # events (a progress event never follows the terminal one).
        self.lock = threading.Lock()
        self.io_lock = threading.Lock()
        self.pending: tuple[int, int | None, str] | None = None
        # job.started was just published: the first progress event waits its turn too.
        self.last_flush = time.monotonic()
        self.last_heartbeat = time.monotonic()
        self.last_check = time.monotonic()
        self.lost = False  # another run took the job, or it was cancelled by termination
        self.cancelled = job.cancel_requested
        # Read once: progress() is on the task's hot path, a settings lookup is not free.
        self.interval = conf.JOB_PROGRESS_INTERVAL
        self.heartbeat_interval = conf.JOB_HEARTBEAT_INTERVAL
        # Set by the ticker: asks it to flush now. Without one, progress() flushes inline.
        self.wake: Callable[[], None] | None = None
        # Set by the ticker: tells it when a value held back by the rate limit is due.
        self.schedule: Callable[[float], None] | None = None
        self._wake_sent = False

    def _write(self, **values: Any) -> bool:
        """One conditional UPDATE: whether this run still holds the job (and so wrote).
        Retried while the database is unreachable (a short outage costs a pause)."""
        return retry_unreachable(
            lambda: transitions.update_running(self.job.pk, self.token, values),
            what=f"job {self.job.pk}")

    # Progress ------------------------------------------------------------------------

    def progress(self, current: int, total: int | None, message: str) -> None:
        """Record the latest progress; when one is due, the ticker thread writes it.

        The task's thread never waits on the database or Redis here: it only hands
        over the value, so reporting often costs the task next to nothing.
        """
        pending = (int(current), None if total is None else int(total),
                   message[:_MESSAGE_MAX] if type(message) is str else str(message)[:_MESSAGE_MAX])
        with self.lock:
            held = self.pending is None  # the first value since the last flush
            self.pending = pending
            due = not self._wake_sent and time.monotonic() - self.last_flush >= self.interval
            if due:
                self._wake_sent = True
        if due:
            if self.wake is not None:
                self.wake()
            else:
                self.flush()
        elif held and self.schedule is not None:
            self.schedule(self.last_flush + self.interval)
        if self.lost:
            raise JobSuperseded(str(self.job.pk))

    def _take_pending(self) -> tuple[int, int | None, str] | None:
        with self.lock:
            pending, self.pending = self.pending, None
            self._wake_sent = False
            self.last_flush = time.monotonic()
            return pending

    def flush(self) -> None:
        """Write and publish the pending progress, if any."""
        with self.io_lock:
            if self.lost:
                return
            pending = self._take_pending()
            if pending is None:
                return
            current, total, message = pending
            now = timezone.now()
            updated = self._write(progress_current=current, progress_total=total,
                                  progress_message=message, heartbeat_at=now, updated_at=now)
            self.last_heartbeat = time.monotonic()
            if not updated:
                self.lost = True
                return
            job = self.job
            job.progress_current, job.progress_total = current, total
            job.progress_message = message
            job.heartbeat_at = job.updated_at = now
            self._publish(events.PROGRESS)

    def _publish(self, event: str) -> None:
        """Publish a progress event, best effort (the caller holds ``io_lock``, so events
        go out in the order of the writes)."""
        job_publish_events(self.job, [(event, job_snapshot(self.job))])

    # Called by the ticker thread ------------------------------------------------------------

    def next_due(self) -> float:
        """When this run next needs the ticker (monotonic): a held value, or a heartbeat."""
        if self.lost:
            return math.inf
        due = self.last_heartbeat + self.heartbeat_interval
        if self.pending is not None:
            due = min(due, self.last_flush + self.interval)
        return due

    def tick(self) -> None:
        now = time.monotonic()
        if self.pending is not None and (self._wake_sent or now - self.last_flush >= self.interval):
            self.flush()
        if now - self.last_heartbeat >= self.heartbeat_interval and not self.lost:
            with self.io_lock:
                self.last_heartbeat = now
                if not self.lost and not self._write(heartbeat_at=timezone.now()):
                    self.lost = True

    # Cancellation ------------------------------------------------------------------------

    def raise_if_lost(self) -> None:
        if self.lost:
            raise JobSuperseded(str(self.job.pk))

    def checkpoint(self) -> None:
        """Raise JobCancelled once cancel was requested (looked up at a bounded rate)."""
        self.raise_if_lost()
        if not self.cancelled and time.monotonic() - self.last_check >= self.interval:
            self.last_check = time.monotonic()
            try:
                row = Job.objects.filter(pk=self.job.pk).values("cancel_requested", "state",
                                                                  "run_token").first()
            except UNREACHABLE:
                # The database is away for now: keep working, look again next time.
                discard_connection()
                return
            if row is None or row["state"] != State.RUNNING or row["run_token"] != self.token:
                self.lost = True
                self.raise_if_lost()
            self.cancelled = bool(row and row["cancel_requested"])
        if self.cancelled:
            raise JobCancelled(str(self.job.pk))

    # The way out ---------------------------------------------------------------------------

    def _finish(self, state: State, **fields: Any) -> bool:
        """Move the job out of ``running`` if this run still holds it; publish once.

        Progress still held back by the rate limit goes into the same UPDATE: the final
        event's snapshot carries it, so the last value is delivered without an extra event.
        """
        with self.io_lock:
            pending = self._take_pending()
            if pending is not None and not self.lost:
                current, total, message = pending
                fields.update(progress_current=current, progress_total=total,
                              progress_message=message)
            fields.update(run_token="", heartbeat_at=None)
            try:
                moved = retry_unreachable(lambda: transitions.move(
                    self.job, state, values=fields, only_from=(State.RUNNING,),
                    token=self.token, refresh=False), what=f"job {self.job.pk}")
            except IllegalTransition:
                moved = False  # finished or cancelled meanwhile by someone else
            if not moved:
                self.lost = True
                return False
        return True

    def succeed(self, result: Any) -> bool:
        try:
            # Store what JSON can carry, and fail loudly on anything else.
            result = json.loads(json.dumps(result, cls=DjangoJSONEncoder))
        except (TypeError, ValueError) as exc:
            return self.fail(TypeError(f"the job's result is not JSON serializable: {exc}"))
        return self._finish(State.SUCCEEDED, result=result, **error_fields(None))

    def fail(self, exc: BaseException) -> bool:
        return self._finish(State.FAILED, **error_fields(exc))

    def cancel(self) -> bool:
        return self._finish(State.CANCELLED, cancel_requested=True)

    def retrying(self, exc: BaseException | None, eta: datetime) -> bool:
        return self._finish(State.RETRYING, eta=eta, **error_fields(exc))


def run_claim(*, job_id: str, task_id: str, redelivered: bool) -> Run | None:
    """Take the job for this delivery of its task, or ``None`` when it is not ours to run.

    Only the job's current message may take it (the reaper gives a re-sent job a new task
    id, so the old message, should it turn up, finds nothing to do). A queued or retrying
    job is taken. A running one is taken over only when its run is gone: its heartbeat is
    stale, or this is its own message delivered again after the worker was lost
    (acks_late + reject_on_worker_lost, or a broker redelivery). Finished and cancelled
    jobs are never run again. A database that cannot be reached raises, and so does a
    top-level job whose owner already runs ``JOB_MAX_RUNNING_PER_USER`` jobs
    (:class:`OwnerBusy`): in both cases the task sends its message again later rather
    than dropping it.
    """
    now = timezone.now()
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        logger.warning("task %s names no valid job id (%r)", task_id, job_id)
        return None
    job = transitions.stub(job_uuid)
    values = {"run_token": uuid.uuid4().hex, "heartbeat_at": now, "eta": None,
              **error_fields(None)}
    try:
        moved = transitions.move(
            job, State.RUNNING, values=values, task_id=task_id, redelivered=redelivered,
            stale_before=now - timedelta(seconds=conf.JOB_HEARTBEAT_TIMEOUT), now=now,
            max_running=conf.JOB_MAX_RUNNING_PER_USER)
    except IllegalTransition:
        moved = False
    if not moved:
        logger.info("job %s: delivery of task %s not run (job finished, cancelled, re-sent "
                    "or held by a live run)", job_id, task_id)
        return None
    return Run(job)
