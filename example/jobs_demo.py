"""Demo jobs for the "My jobs" page (imported by Celery through CELERY_IMPORTS).

* ``demo.slow`` - a configurable slow task with steps, cancellable between steps.
* ``demo.flaky`` - fails ``fail_times`` times, retried the Celery way, then succeeds.
* ``demo.noop`` - ten progress updates and done.
* ``demo.blocking`` - sleeps without checkpoints; ``terminate_on_cancel`` (Python only).
"""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task
from pydantic import BaseModel, ConfigDict, Field

from taskstream.jobs import LiveTask
from taskstream.jobs.kinds import register_job_kind


class DemoFlakyError(RuntimeError):
    """The flaky demo job's planned failure."""


class SlowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(10, ge=1, le=1000)
    step_seconds: float = Field(0.3, ge=0, le=10)


class FlakyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail_times: int = Field(2, ge=0, le=10)


class NoopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    updates: int = Field(10, ge=0, le=10_000)


@shared_task(base=LiveTask, bind=True, name="demo.slow")
def slow(self: LiveTask, *, steps: int = 10, step_seconds: float = 0.3) -> dict[str, Any]:
    self.progress(0, steps, "starting")
    for step in range(1, steps + 1):
        self.checkpoint()
        time.sleep(step_seconds)
        self.progress(step, steps, f"step {step} of {steps}")
    return {"steps": steps}


@shared_task(base=LiveTask, bind=True, name="demo.flaky", autoretry_for=(DemoFlakyError,),
             retry_backoff=0.5, retry_backoff_max=2, retry_jitter=True, max_retries=3)
def flaky(self: LiveTask, *, fail_times: int = 2) -> dict[str, Any]:
    attempt = self.job.attempt if self.job is not None else self.request.retries + 1
    self.progress(0, 1, "working")  # the page shows the attempt number itself
    if attempt <= fail_times:
        raise DemoFlakyError(f"planned failure {attempt} of {fail_times}")
    self.progress(1, 1, "done")
    return {"attempts": attempt}


@shared_task(base=LiveTask, bind=True, name="demo.noop")
def noop(self: LiveTask, *, updates: int = 10) -> None:
    for i in range(1, updates + 1):
        self.progress(i, updates)


@shared_task(base=LiveTask, bind=True, name="demo.blocking", terminate_on_cancel=True)
def blocking(self: LiveTask, *, seconds: float = 30.0) -> None:
    """A step that never reaches a checkpoint: cancelling terminates it instead."""
    self.progress(0, 1, "blocking")
    time.sleep(seconds)


register_job_kind("demo.slow", params=SlowParams, label="Slow job with steps")
register_job_kind("demo.flaky", params=FlakyParams, label="Fails twice, then succeeds")
register_job_kind("demo.noop", params=NoopParams, label="No-op with ten updates")
