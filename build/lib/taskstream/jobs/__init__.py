"""Live background jobs: a ``Job`` row per unit of work, watched over the hub.

Public API (importing this module does not need the app registry)::

    from taskstream.jobs import LiveTask, JobCancelled, job_start, job_cancel, job_retry
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskstream.jobs.exceptions import JobCancelled
    from taskstream.jobs.services import job_cancel, job_retry, job_start
    from taskstream.jobs.tasks import LiveTask

__all__ = ["JobCancelled", "LiveTask", "job_cancel", "job_retry", "job_start"]

_LAZY = {
    "JobCancelled": "taskstream.jobs.exceptions",
    "LiveTask": "taskstream.jobs.tasks",
    "job_start": "taskstream.jobs.services",
    "job_cancel": "taskstream.jobs.services",
    "job_retry": "taskstream.jobs.services",
}


def __getattr__(name: str) -> Any:
    # Models are only imported on first use, so `import taskstream.jobs` works before setup.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskstream.jobs' has no attribute {name!r}")
    return getattr(import_module(module), name)
