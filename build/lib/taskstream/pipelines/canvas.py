"""The Celery canvas of a pipeline, built from what is left to do.

New: ``validate → split``; split then sends ``chord(group(chunk…), aggregate → render)``.
After a failure, a retry builds the same shape from the first step not yet succeeded, and
only the chunks not yet succeeded go into the group.
"""

from __future__ import annotations

from typing import Any

from celery import chain, chord, group
from celery.canvas import Signature

from taskstream.jobs.models import Job
from taskstream.jobs.services import JOB_KWARG
from taskstream.jobs.states import State
from taskstream.pipelines.models import Chunk, Pipeline
from taskstream.pipelines.services import AGGREGATE, RENDER, SPLIT, VALIDATE


def step_signature(pipeline: Pipeline, job: Job, **kwargs: Any) -> Signature:
    from celery import current_app

    options: dict[str, Any] = {"task_id": job.celery_task_id}
    if pipeline.queue:
        options["queue"] = pipeline.queue
    return current_app.signature(job.kind, kwargs={"pipeline": str(pipeline.pk), **kwargs,
                                                   JOB_KWARG: str(job.pk)},
                                 immutable=True, **options)


def _steps(pipeline: Pipeline) -> dict[str, Job]:
    return {job.kind: job for job in Job.objects.filter(parent_id=pipeline.job_id)
            .exclude(pipeline_chunk__isnull=False)}


def remaining_after_split(pipeline: Pipeline) -> Signature | None:
    """``chord(group(chunks to do), aggregate → render)``, or less when parts are done."""
    steps = _steps(pipeline)
    tail = [step_signature(pipeline, steps[kind]) for kind in (AGGREGATE, RENDER)
            if steps[kind].state != State.SUCCEEDED]
    chunks = [step_signature(pipeline, c.job, index=c.index)
              for c in Chunk.objects.filter(pipeline=pipeline).select_related("job")
              if c.job.state != State.SUCCEEDED]
    if not tail:
        return None
    body = tail[0] if len(tail) == 1 else chain(*tail)
    if not chunks:
        return body
    return chord(group(chunks), body)


def remaining(pipeline: Pipeline) -> Signature | None:
    steps = _steps(pipeline)
    if steps[VALIDATE].state != State.SUCCEEDED:
        return chain(step_signature(pipeline, steps[VALIDATE]),
                     step_signature(pipeline, steps[SPLIT]))
    if steps[SPLIT].state != State.SUCCEEDED:
        return step_signature(pipeline, steps[SPLIT])
    return remaining_after_split(pipeline)
