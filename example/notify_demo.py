"""A demo job that notifies its owner when done ("your report is ready", with a link).

Imported by Celery through CELERY_IMPORTS; ``notify_owner=True`` is all a task needs.
"""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task
from pydantic import BaseModel, ConfigDict, Field

from taskstream.jobs import LiveTask
from taskstream.jobs.kinds import register_job_kind


class ReportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = Field(5, ge=1, le=1000)
    row_seconds: float = Field(0.2, ge=0, le=5)


@shared_task(base=LiveTask, bind=True, name="demo.report", notify_owner=True,
             notify_url="/jobs/")
def report(self: LiveTask, *, rows: int = 5, row_seconds: float = 0.2) -> dict[str, Any]:
    for row in range(1, rows + 1):
        self.checkpoint()
        time.sleep(row_seconds)
        self.progress(row, rows, f"row {row} of {rows}")
    return {"rows": rows}


register_job_kind("demo.report", params=ReportParams, label="Report")
