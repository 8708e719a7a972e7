"""The jobs app's own Celery task: the reaper that beat runs. (``LiveTask``, the base class
of jobs, lives in :mod:`taskstream.jobs.live`; it is importable from here too.)"""

from __future__ import annotations

from celery import shared_task

from taskstream.jobs.housekeeping import REAPER_TASK
from taskstream.jobs.live import LiveTask

__all__ = ["REAPER_TASK", "LiveTask", "reap"]


@shared_task(name=REAPER_TASK, ignore_result=True)
def reap() -> int:
    """Re-queue jobs whose worker was lost (see :func:`taskstream.jobs.services.job_reap`)."""
    from taskstream.jobs.services import job_reap

    return job_reap()
