"""Job kinds a test worker imports (tests/jobs/worker_settings.py) besides the demo's."""

from __future__ import annotations

from celery import shared_task

from taskstream.jobs import LiveTask


class PlannedRetry(RuntimeError):
    """The first attempt's planned failure."""


@shared_task(base=LiveTask, bind=True, name="tests.jobs.retry_new_kwargs")
def retry_new_kwargs(self: LiveTask, *, value: int) -> int:
    """Retries once with new keyword arguments; the retry must still run as the job."""
    if self.job is not None and self.job.attempt == 1:
        raise self.retry(kwargs={"value": value + 1}, exc=PlannedRetry("first"), countdown=0.2)
    return value
