"""Notify a job's owner when it finishes, for tasks that ask: ``notify_owner=True``.

::

    @shared_task(base=LiveTask, bind=True, name="reports.build", notify_owner=True,
                 notify_url="/reports/{id}/")
    def build(self, ...): ...

The jobs app knows nothing of notifications: this listens to Celery's own signals,
which fire after the job's final state is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_failure, task_success

logger = logging.getLogger("taskstream.notifications")


def _job_id(task: Any, kwargs: dict[str, Any] | None) -> str | None:
    from taskstream.jobs.services import JOB_KWARG

    if kwargs is None:
        kwargs = getattr(task.request, "kwargs", None) or {}
    job_id = kwargs.get(JOB_KWARG)
    return str(job_id) if job_id else None


def _notify(task: Any, kwargs: dict[str, Any] | None) -> None:
    if not getattr(task, "notify_owner", False):
        return
    job_id = _job_id(task, kwargs)
    if job_id is None:
        return
    from taskstream.notifications.services import notification_job_finished

    try:
        notification_job_finished(job_id=job_id, url=getattr(task, "notify_url", "") or "")
    except Exception:  # the job's outcome stands even if telling its owner fails
        logger.exception("could not notify the owner of job %s", job_id)


@task_success.connect(weak=False)
def _on_success(sender: Any = None, **extra: Any) -> None:
    _notify(sender, None)


@task_failure.connect(weak=False)
def _on_failure(sender: Any = None, kwargs: dict[str, Any] | None = None, **extra: Any) -> None:
    _notify(sender, kwargs)
