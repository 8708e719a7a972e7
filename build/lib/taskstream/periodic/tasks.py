"""taskstream's own schedules, registered with beat on start (any scheduler).

The app registers them in ``ready()`` (``taskstream.housekeeping``). With
``SingleBeatScheduler`` they become django-celery-beat rows the first time a beat leads
(intervals from the TASKSTREAM settings) and stay editable in the admin after.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import shared_task
from celery.schedules import crontab

from taskstream.conf import conf
from taskstream.housekeeping import register_schedule

PURGE_TASK = "taskstream.periodic.purge"
DIGEST_TASK = "taskstream.periodic.digest"
CHECK_TASK = "taskstream.periodic.check_missed"


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge() -> dict[str, int]:
    """Delete data older than RETENTION_DAYS (see ``periodic_purge``)."""
    from taskstream.periodic.services import periodic_purge

    return periodic_purge()


@shared_task(name=DIGEST_TASK, ignore_result=True)
def digest() -> int:
    """E-mail the daily digest of unread notifications."""
    from taskstream.periodic.services import periodic_digest

    return periodic_digest()


@shared_task(name=CHECK_TASK, ignore_result=True)
def check_missed() -> int:
    """Alert on schedules that missed a run (see ``periodic_check_missed``)."""
    from taskstream.periodic.services import periodic_check_missed

    return len(periodic_check_missed())


def schedules() -> dict[str, dict[str, Any]]:
    def entry(task: str, schedule: Any, expires: float | None = None) -> dict[str, Any]:
        # The header names the run in the history whichever scheduler sends it.
        options: dict[str, Any] = {"headers": {"periodic_task_name": task}}
        if expires:
            options["expires"] = expires
        return {"task": task, "schedule": schedule, "options": options}

    return {
        PURGE_TASK: entry(PURGE_TASK, conf.PURGE_INTERVAL, conf.PURGE_INTERVAL),
        DIGEST_TASK: entry(DIGEST_TASK, crontab(minute=0, hour=conf.DIGEST_HOUR)),
        CHECK_TASK: entry(CHECK_TASK, conf.PERIODIC_CHECK_INTERVAL,
                          conf.PERIODIC_CHECK_INTERVAL),
    }


def _entry(name: str) -> dict[str, Any]:
    return schedules()[name]


def register_schedules() -> None:
    """Hand the schedules to beat (read from the settings when beat starts)."""
    for name in schedules():
        register_schedule(name, partial(_entry, name))
