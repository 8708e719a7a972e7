"""Several events of one job in one Redis round trip, in order.

A run holds its ``job.started`` back for a few milliseconds: a short job's start and end
then reach Redis together (one round trip instead of two), a longer job's start goes out
on its own. Each event still goes to ``job:<id>`` and ``user:<owner>`` with its own log
entry and cursor, exactly as :func:`taskstream.jobs.events.job_publish` sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskstream.exceptions import EventTooLarge
from taskstream.hub.batch import publish_call, publish_calls

if TYPE_CHECKING:
    from taskstream.jobs.models import Job

logger = logging.getLogger("taskstream.jobs")


def job_publish_events(job: Job, items: Sequence[tuple[str, Mapping[str, Any]]]) -> bool:
    """Publish ``(event, snapshot)`` pairs in order; like ``job_publish``, a Redis failure
    is logged (the state is committed and the API shows it) rather than raised."""
    topics = (f"job:{job.id}", f"user:{job.owner_id}")
    calls = []
    try:
        for event, data in items:
            try:
                encoded = [publish_call(topic, event, data) for topic in topics]
            except EventTooLarge:
                # A result too big for an event still gets its event; the API has it.
                data = {**data, "result": None, "result_omitted": True}
                encoded = [publish_call(topic, event, data) for topic in topics]
            calls.extend(encoded)
        publish_calls(calls)
        return True
    except Exception:
        logger.exception("could not publish %s for job %s", [e for e, _ in items], job.id)
    return False
