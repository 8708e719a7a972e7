"""Recording runs: Celery signals around every task whose message names a schedule.

django-celery-beat puts ``periodic_task_name`` in the headers of what it sends (and
taskstream's own schedules add it for any scheduler), so a run is recorded whichever
worker runs it, with its start, end, duration, outcome and error.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger("taskstream.periodic")


def _schedule_name(task: Any) -> str | None:
    name = getattr(task.request, "periodic_task_name", None)
    if name is None:
        name = (getattr(task.request, "headers", None) or {}).get("periodic_task_name")
    return str(name) if name else None


def _prerun(sender: Any = None, task_id: str | None = None, task: Any = None,
            **kwargs: Any) -> None:
    if task is None or task_id is None:
        return
    name = _schedule_name(task)
    if name is None:
        return
    from taskstream.periodic.models import PeriodicRun

    try:
        close_old_connections()
        PeriodicRun.objects.update_or_create(task_id=task_id, defaults={
            "name": name[:200], "task": task.name[:200], "started_at": timezone.now(),
            "hostname": str(task.request.hostname or "")[:200],
            "outcome": PeriodicRun.Outcome.RUNNING, "finished_at": None, "error": ""})
    except Exception:
        logger.exception("could not record the start of %s (%s)", name, task_id)


def _postrun(sender: Any = None, task_id: str | None = None, task: Any = None,
             retval: Any = None, state: str | None = None, **kwargs: Any) -> None:
    if task is None or task_id is None or _schedule_name(task) is None:
        return
    from taskstream.periodic.models import PeriodicRun

    outcome = {"SUCCESS": PeriodicRun.Outcome.SUCCEEDED,
               "RETRY": PeriodicRun.Outcome.RETRYING}.get(state or "", PeriodicRun.Outcome.FAILED)
    error = "" if outcome == PeriodicRun.Outcome.SUCCEEDED else f"{type(retval).__name__}: {retval}"
    try:
        run = PeriodicRun.objects.filter(task_id=task_id).first()
        if run is None:
            return
        now = timezone.now()
        run.finished_at = now
        run.duration = (now - run.started_at).total_seconds()
        run.outcome = outcome
        run.error = error[:10_000]
        run.save(update_fields=["finished_at", "duration", "outcome", "error"])
    except Exception:
        logger.exception("could not record the end of %s", task_id)


def connect() -> None:
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="taskstream.periodic.prerun")
    signals.task_postrun.connect(_postrun, weak=False,
                                 dispatch_uid="taskstream.periodic.postrun")
