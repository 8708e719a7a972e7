"""Jobs' beat schedule (the reaper) and purge, registered with ``taskstream.housekeeping``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskstream.conf import conf

REAPER_TASK = "taskstream.jobs.reap"


def reaper_schedule() -> dict[str, Any]:
    return {"task": REAPER_TASK, "schedule": conf.JOB_REAPER_INTERVAL,
            "options": {"expires": conf.JOB_REAPER_INTERVAL}}


def job_purge_finished(*, before: datetime) -> int:
    """Delete top-level jobs that finished before ``before`` (their children go with them)."""
    from taskstream.jobs.models import Job
    from taskstream.jobs.states import TERMINAL

    return int(Job.objects.filter(parent__isnull=True, state__in=list(TERMINAL),
                                  finished_at__lt=before).delete()[0])


def register() -> None:
    from taskstream.housekeeping import register_purge, register_schedule

    register_schedule(REAPER_TASK, reaper_schedule)
    register_purge("jobs", job_purge_finished)
