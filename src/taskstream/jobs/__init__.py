"""Live background jobs: a ``Job`` row per unit of work, watched over the hub.

Public API (importing this module does not need the app registry)::

    from taskstream.jobs import LiveTask, JobCancelled, job_start, job_cancel, job_retry

For apps that run their own canvas of jobs (pipelines): ``job_create``, ``job_move``,
``job_progress``; for code that sees a task's message (signal receivers, canvases):
``job_id_of`` and ``job_task_kwargs``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskstream.jobs.delivery import job_id_of, job_task_kwargs
    from taskstream.jobs.exceptions import JobCancelled
    from taskstream.jobs.live import LiveTask
    from taskstream.jobs.services import (
        job_cancel,
        job_create,
        job_move,
        job_progress,
        job_retry,
        job_start,
    )

__all__ = ["JobCancelled", "LiveTask", "job_cancel", "job_create", "job_id_of", "job_move",
           "job_progress", "job_retry", "job_start", "job_task_kwargs"]

_LAZY = {
    "JobCancelled": "taskstream.jobs.exceptions",
    "LiveTask": "taskstream.jobs.live",
    "job_start": "taskstream.jobs.services",
    "job_cancel": "taskstream.jobs.services",
    "job_retry": "taskstream.jobs.services",
    "job_create": "taskstream.jobs.services",
    "job_move": "taskstream.jobs.services",
    "job_progress": "taskstream.jobs.services",
    "job_id_of": "taskstream.jobs.delivery",
    "job_task_kwargs": "taskstream.jobs.delivery",
}


def __getattr__(name: str) -> Any:
    # Models are only imported on first use, so `import taskstream.jobs` works before setup.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskstream.jobs' has no attribute {name!r}")
    return getattr(import_module(module), name)
