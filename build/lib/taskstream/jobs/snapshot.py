"""The job snapshot: what events carry and the API returns (one shape everywhere)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskstream.jobs.models import Job


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def percent(current: int, total: int | None) -> float | None:
    if not total or total <= 0:
        return None
    return round(min(max(current / total, 0.0), 1.0) * 100, 1)


def job_snapshot(job: Job, *, with_traceback: bool = False) -> dict[str, Any]:
    """The job as JSON data. Tracebacks only on request (the API gives them to staff)."""
    error: dict[str, Any] | None = None
    if job.error_type or job.error_message:
        error = {"type": job.error_type, "message": job.error_message}
        if with_traceback:
            error["traceback"] = job.error_traceback
    return {
        "id": str(job.id),
        "topic": f"job:{job.id}",
        "kind": job.kind,
        "state": job.state,
        "progress": {
            "current": job.progress_current,
            "total": job.progress_total,
            "percent": percent(job.progress_current, job.progress_total),
            "message": job.progress_message,
        },
        "attempt": job.attempt,
        "result": job.result,
        "error": error,
        "cancel_requested": job.cancel_requested,
        "parent": str(job.parent_id) if job.parent_id else None,
        "eta": _iso(job.eta),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
    }
