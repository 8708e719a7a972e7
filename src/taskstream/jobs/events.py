"""Job events on the hub: each goes to the job's topic and to its owner's ``user:`` topic.

State events (created, started, retrying, succeeded, failed, cancelled) go through the
outbox, in the transaction of the change (:func:`job_announce`); progress events are
published at once and best effort (:func:`job_publish`): the latest value rides the next
state event anyway.
"""

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


def job_announce(job: Job, event: str) -> None:
    """Store ``event`` with the job's snapshot in the outbox, inside the current transaction
    (the one that made the change): it reaches ``job:<id>`` and ``user:<owner>`` after
    the commit, at once or, while Redis is down, through the relay."""
    from taskstream.outbox import outbox_write_topics

    data = job_snapshot(job)
    # One event, two topics: encoded once, one INSERT, one round trip to Redis.
    topics = (f"job:{job.id}", f"user:{job.owner_id}")
    try:
        outbox_write_topics(topics=topics, event=event, data=data)
    except EventTooLarge:
        # A result too big for an event still gets its event; the API has the result.
        outbox_write_topics(topics=topics, event=event,
                            data={**data, "result": None, "result_omitted": True})


def job_publish(job: Job, event: str) -> str | None:
    """Publish ``event`` (progress) with the job's snapshot at once; returns the cursor on
    ``job:<id>``. Best effort: if Redis is down the event is logged and lost rather than
    failing the job (the next state event carries the latest progress)."""
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
