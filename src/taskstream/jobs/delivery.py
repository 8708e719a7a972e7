"""How a job's id travels with its task's message, and how others read it back.

The id rides as one extra keyword argument that ``LiveTask`` takes off before the task
body runs. Code outside the jobs app (signal receivers, canvases) uses the functions here,
never the keyword's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The keyword argument that carries the job id to the task (LiveTask pops it).
JOB_KWARG = "taskstream_job"


def job_task_kwargs(job_id: Any, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of a message that runs job ``job_id`` with ``params``."""
    return {**(params or {}), JOB_KWARG: str(job_id)}


def job_id_of(task: Any, kwargs: Mapping[str, Any] | None = None) -> str | None:
    """The id of the job a task's message runs (``None`` for a plain call).

    ``kwargs``: the message's keyword arguments (Celery signals pass them); without them,
    the task's current request is read.
    """
    if kwargs is None:
        request = getattr(task, "request", None)
        kwargs = getattr(request, "kwargs", None) or {}
    job_id = kwargs.get(JOB_KWARG)
    return str(job_id) if job_id else None
