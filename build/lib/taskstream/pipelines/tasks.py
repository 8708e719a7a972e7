"""The pipeline's Celery tasks: thin LiveTasks around ``steps``, with retries and backoff.

A transient error (storage, database, network: ``OSError``, ``TransientStepError``,
``DatabaseError``) retries the step after PIPELINE_RETRY_BACKOFF seconds, doubling, up
to PIPELINE_MAX_RETRIES times; anything else, or the last failure, fails the pipeline.
A missing file is not transient: it fails the step at once. Errors the user sees never
name a server path (an ``OSError`` carries one); the log keeps it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import DatabaseError, close_old_connections

from taskstream.conf import conf
from taskstream.jobs.exceptions import JobCancelled
from taskstream.jobs.models import Job
from taskstream.jobs.tasks import LiveTask
from taskstream.pipelines import services, steps
from taskstream.pipelines.exceptions import MissingFile, TransientStepError

logger = logging.getLogger("taskstream.pipelines")

TRANSIENT = (OSError, TransientStepError, DatabaseError)
# Seconds between looks at the parent job for a cancel (each look is a query).
PARENT_CHECK_INTERVAL = 0.25


def backoff(retries: int) -> float:
    return float(min(conf.PIPELINE_RETRY_BACKOFF * (2 ** retries), 300.0))


class PipelineStep(LiveTask):
    """A step of a pipeline: stops when the pipeline is cancelled; its final failure fails
    the pipeline."""

    abstract = True
    # Chunks are chord members: their results must reach the chord's counter.
    ignore_result = False
    _parent_checked = 0.0

    def checkpoint(self) -> None:
        super().checkpoint()
        job = self.job
        if job is None or time.monotonic() - self._parent_checked < PARENT_CHECK_INTERVAL:
            return
        self._parent_checked = time.monotonic()
        if services.parent_cancelled(job.parent_id):
            raise JobCancelled(str(job.parent_id))

    def run_step(self, body: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        try:
            return body(self, **kwargs)
        except FileNotFoundError as exc:
            # Waiting does not bring a file back; steps name the files they know (MissingFile).
            logger.warning("%s of pipeline %s: %s", self.name, kwargs.get("pipeline_id"), exc)
            raise MissingFile("a file this step needs is gone") from None
        except TRANSIENT as exc:
            close_old_connections()
            logger.warning("%s of pipeline %s: %s; retrying", self.name,
                           kwargs.get("pipeline_id"), exc)
            shown = exc
            if isinstance(exc, OSError):  # str(exc) holds the file's path
                shown = TransientStepError(f"storage error: {exc.strerror or type(exc).__name__}")
            raise self.retry(exc=shown, countdown=backoff(self.request.retries),
                             max_retries=conf.PIPELINE_MAX_RETRIES) from None

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        pipeline_id = (kwargs or {}).get("pipeline")
        if not pipeline_id:
            return
        where = services.STEP_LABELS.get(self.name, self.name)
        index = (kwargs or {}).get("index")
        if index is not None:
            chunk = services.Chunk.objects.filter(pipeline_id=pipeline_id, index=index).first()
            lines = (f" (lines {chunk.first_line}–{chunk.first_line + chunk.rows - 1})"
                     if chunk else "")
            where = f"chunk {int(index) + 1}{lines}"
        if self.request.retries:
            where += f" after {self.request.retries + 1} attempts"
        try:
            services.pipeline_fail(pipeline_id=str(pipeline_id), exc=exc, where=where)
        except Exception:
            logger.exception("could not fail pipeline %s", pipeline_id)


@shared_task(base=PipelineStep, bind=True, name=services.VALIDATE)
def validate(self: PipelineStep, *, pipeline: str) -> dict[str, Any]:
    return self.run_step(steps.validate, pipeline_id=pipeline)


@shared_task(base=PipelineStep, bind=True, name=services.SPLIT)
def split(self: PipelineStep, *, pipeline: str) -> dict[str, Any]:
    return self.run_step(steps.split, pipeline_id=pipeline)


@shared_task(base=PipelineStep, bind=True, name=services.CHUNK)
def process_chunk(self: PipelineStep, *, pipeline: str, index: int) -> dict[str, Any]:
    return self.run_step(steps.process_chunk, pipeline_id=pipeline, index=index)


@shared_task(base=PipelineStep, bind=True, name=services.AGGREGATE)
def aggregate(self: PipelineStep, *, pipeline: str) -> dict[str, Any]:
    return self.run_step(steps.aggregate, pipeline_id=pipeline)


@shared_task(base=PipelineStep, bind=True, name=services.RENDER)
def render(self: PipelineStep, *, pipeline: str) -> dict[str, Any]:
    return self.run_step(steps.render, pipeline_id=pipeline)


@shared_task(name=services.LAUNCH, ignore_result=True, acks_late=True,
             autoretry_for=(DatabaseError, OSError), retry_backoff=True, max_retries=5)
def launch(*, pipeline: str) -> None:
    """Send what is left of the pipeline's canvas (in a worker: chords need its backend)."""
    from taskstream.pipelines.canvas import remaining
    from taskstream.pipelines.models import Pipeline

    close_old_connections()
    found = Pipeline.objects.select_related("job").filter(pk=pipeline).first()
    if found is None or found.job.state not in (Job.State.QUEUED, Job.State.RUNNING):
        return
    services.pipeline_mark_running(pipeline=found, message="starting")
    canvas = remaining(found)
    if canvas is not None:
        canvas.apply_async()
