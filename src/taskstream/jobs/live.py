"""``LiveTask``, the Celery base class of jobs.

::

    from celery import shared_task
    from taskstream.jobs import LiveTask

    @shared_task(base=LiveTask, bind=True, name="reports.export",
                 autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
    def export(self, *, rows: int) -> dict:
        for i in range(rows):
            self.checkpoint()                 # raises JobCancelled after job_cancel()
            ...
            self.progress(i + 1, rows, "exporting")
        return {"rows": rows}

Started with ``job_start(kind="reports.export", owner=user, params={"rows": 10})``;
called without a job (``export.delay(rows=3)``) it runs as a plain task and
``progress``/``checkpoint`` do nothing.

Eager runs (``CELERY_TASK_ALWAYS_EAGER``, or ``task.apply()`` with the job's keyword
arguments) take the same path as a worker's: the job is claimed, reports progress, and ends
``succeeded``, ``failed`` or ``cancelled``; an auto-retry runs again at once (Celery ignores
countdowns there) as the job's next attempt. docs/testing.md shows them in tests.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, NoReturn

from celery import Task
from celery.exceptions import Retry
from django.db import close_old_connections
from django.utils import timezone

from taskstream.jobs.delivery import JOB_KWARG, job_task_kwargs
from taskstream.jobs.exceptions import JobCancelled, JobSuperseded, OwnerBusy
from taskstream.jobs.outage import UNREACHABLE, discard_connection

logger = logging.getLogger("taskstream.jobs")

# Header of a message sent again because its claim could not reach the database.
CLAIM_TRIES = "taskstream_claim_tries"
_CLAIM_DELAY_MAX = 30.0
# Header of a message sent again because its owner ran as many jobs as they may. Its delay
# stays short (a freed place is taken within seconds) and is never the task's retry budget.
CLAIM_WAITS = "taskstream_claim_waits"
_WAIT_DELAY_FIRST = 0.5
_WAIT_DELAY_MAX = 5.0


class LiveTask(Task):
    """Celery base class of jobs: progress, checkpoints, state events, exactly-once finish."""

    # A lost worker's message goes back to the queue instead of being acknowledged.
    acks_late = True
    reject_on_worker_lost = True
    # True: job_cancel() of a running job terminates the worker's child (SIGTERM) instead
    # of waiting for the next checkpoint(). Only for tasks that are safe to kill midway.
    terminate_on_cancel = False
    # The job id travels as an extra keyword the task body never sees (``__call__`` pops
    # it), so Celery's own argument check would refuse it; job_start checks params instead.
    typing = False

    def _run_handle(self) -> Any:
        return getattr(self.request, "taskstream_run", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from taskstream.jobs.lifecycle import run_claim
        from taskstream.jobs.ticker import ticker

        job_id = kwargs.pop(JOB_KWARG, None)
        if job_id is None:
            return super().__call__(*args, **kwargs)
        request = self.request
        delivery = request.delivery_info or {}
        close_old_connections()
        try:
            run = run_claim(job_id=str(job_id), task_id=str(request.id),
                            redelivered=bool(delivery.get("redelivered")))
        except UNREACHABLE as exc:
            self._claim_later(str(job_id), exc)
        except OwnerBusy as exc:
            self._claim_later(str(job_id), exc, busy=True)
        if run is None:
            return None
        if run.cancelled:
            run.cancel()
            return None
        request.taskstream_run = run  # type: ignore[attr-defined]
        ticker.add(run)
        try:
            result = super().__call__(*args, **kwargs)
        except JobCancelled:
            run.cancel()
            return None
        except JobSuperseded:
            logger.info("job %s was taken over by another run; this one stops", job_id)
            return None
        except Retry:
            raise  # retry() already moved the job to retrying
        except Exception as exc:
            if not run.fail(exc):
                return None  # this run no longer owns the job: its failure is not the job's
            raise
        finally:
            ticker.remove(run, release=bool(request.is_eager))
            request.taskstream_run = None  # type: ignore[attr-defined]
        run.succeed(result)
        return result

    def _claim_later(self, job_id: str, exc: Exception, *, busy: bool = False) -> NoReturn:
        """The job cannot be claimed now: send this message again after a doubling delay
        (its own header counts the tries, not the task's retry budget) and let Celery
        acknowledge this one, instead of dropping the job. Either the database cannot be
        reached, or (``busy``) the job's owner runs as many jobs as they may: this worker
        slot is freed for another user's job, and the job is claimed again shortly."""
        request = self.request
        if request.called_directly:
            raise exc
        if request.is_eager:
            # An eager run cannot wait: sending its message again would run it again at
            # once, inline, for ever. The job stays queued; the error says why.
            if busy:
                raise OwnerBusy(f"{exc} (JOB_MAX_RUNNING_PER_USER); an eager run "
                                "(CELERY_TASK_ALWAYS_EAGER, apply()) cannot wait for a free "
                                "place") from exc
            raise exc
        header = CLAIM_WAITS if busy else CLAIM_TRIES
        tries = int((request.headers or {}).get(header, 0)) + 1
        if busy:
            delay = min(_WAIT_DELAY_FIRST * 2.0 ** (tries - 1), _WAIT_DELAY_MAX)
            logger.info("job %s, task %s: its owner runs as many jobs as they may; claiming "
                        "again in %.1f s (wait %d)", job_id, request.id, delay, tries)
        else:
            discard_connection()
            delay = min(2.0 ** (tries - 1), _CLAIM_DELAY_MAX)
            logger.warning("job %s, task %s: database unreachable (%s: %s); claiming again "
                           "in %.0f s (try %d)", job_id, request.id, type(exc).__name__, exc,
                           delay, tries)
        headers = {**(request.headers or {}), header: tries}
        self.signature_from_request(request, countdown=delay, headers=headers).apply_async()
        raise Retry(f"claim again in {delay:.1f} s: {exc}", exc,
                    when=timezone.now() + timedelta(seconds=delay))

    @property
    def job(self) -> Any:
        """The ``Job`` this run works on (``None`` when called without a job)."""
        run = self._run_handle()
        return run.job if run is not None else None

    def progress(self, current: int, total: int | None = None, message: str = "") -> None:
        """Report progress; events go out at most every ``JOB_PROGRESS_INTERVAL`` s, the
        last value always. Raises ``JobSuperseded`` if another run took the job over."""
        run = self._run_handle()
        if run is not None:
            run.progress(current, total, message)

    def checkpoint(self) -> None:
        """Raise :class:`JobCancelled` once cancelling this job was requested."""
        run = self._run_handle()
        if run is not None:
            run.checkpoint()

    def retry(self, args: Any = None, kwargs: Any = None, exc: Exception | None = None,
              throw: bool = True, eta: datetime | None = None, countdown: float | None = None,
              max_retries: int | None = None, **options: Any) -> Any:
        """Celery's retry; the job shows ``retrying`` with the error and eta first."""
        run = self._run_handle()
        request = self.request
        limit = self.max_retries if max_retries is None else max_retries
        will_retry = not request.called_directly and (limit is None
                                                      or request.retries + 1 <= limit)
        if run is not None and will_retry:
            # Before the new message is sent, so its run finds the job retrying.
            delay = countdown if countdown is not None else self.default_retry_delay
            when = eta or timezone.now() + timedelta(seconds=float(delay or 0))
            run.retrying(exc, when)
        if run is not None:
            # The retry's message must name the job again, whatever keywords it carries. A
            # worker's request still holds the job's keyword, but new ``kwargs`` given here do
            # not, and neither does an eager run's request (Celery's own __call__ pushed one
            # with the keywords LiveTask had taken it from): the retry would run without its
            # job, leaving the job `retrying` for ever.
            given = request.kwargs if kwargs is None else kwargs
            kwargs = job_task_kwargs(run.job.pk, {k: v for k, v in (given or {}).items()
                                                  if k != JOB_KWARG})
            if args is None:
                args = request.args
        return super().retry(args=args, kwargs=kwargs, exc=exc, throw=throw, eta=eta,
                             countdown=countdown, max_retries=max_retries, **options)
