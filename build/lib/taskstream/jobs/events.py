"""Job events on the hub: each goes to the job's topic and to its owner's ``user:`` topic."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from taskstream.exceptions import EventTooLarge
from taskstream.hub.batch import publish_many
from taskstream.jobs.snapshot import job_snapshot

if TYPE_CHECKING:
    from taskstream.jobs.models import Job

logger = logging.getLogger("taskstream.jobs")

CREATED = "job.created"
STARTED = "job.started"
PROGRESS = "job.progress"
RETRYING = "job.retrying"
SUCCEEDED = "job.succeeded"
FAILED = "job.failed"
CANCELLED = "job.cancelled"


def job_publish(job: Job, event: str) -> str | None:
    """Publish ``event`` with the job's snapshot; returns the cursor on ``job:<id>``.

    The state change is already committed when this runs; if Redis is down the event is
    logged and lost rather than failing the job (the snapshot over HTTP stays right).
    """
    data = job_snapshot(job)
    topics = [f"job:{job.id}", f"user:{job.owner_id}"]
    try:
        try:
            cursors = publish_many(topics, event, data)
        except EventTooLarge:
            # A result too big for an event still gets its event; the API has the result.
            data = {**data, "result": None, "result_omitted": True}
            cursors = publish_many(topics, event, data)
    except Exception:
        logger.exception("could not publish %s for job %s", event, job.id)
        return None
    return cursors[0]
