"""Reads for the schedules page: each schedule with its last runs and missed runs."""

from __future__ import annotations

from typing import Any

from taskstream.periodic.models import MissedRun, PeriodicRun


def _run(run: PeriodicRun) -> dict[str, Any]:
    return {"task_id": run.task_id, "started_at": run.started_at, "finished_at": run.finished_at,
            "duration": run.duration, "outcome": run.outcome, "error": run.error,
            "hostname": run.hostname}


def schedule_overview(*, runs_per_schedule: int = 10) -> list[dict[str, Any]]:
    """Every beat schedule (django-celery-beat rows) with its recent runs and alerts."""
    from django_celery_beat.models import PeriodicTask

    rows = []
    for entry in PeriodicTask.objects.order_by("name"):
        runs = list(PeriodicRun.objects.filter(name=entry.name)[:runs_per_schedule])
        rows.append({
            "name": entry.name, "task": entry.task, "enabled": entry.enabled,
            "schedule": str(entry.interval or entry.crontab or entry.solar or entry.clocked),
            "last_run_at": entry.last_run_at, "total_run_count": entry.total_run_count,
            "runs": [_run(r) for r in runs],
            "missed": list(MissedRun.objects.filter(name=entry.name)[:5]),
        })
    return rows


def missed_recent(*, limit: int = 20) -> list[MissedRun]:
    return list(MissedRun.objects.all()[:limit])
