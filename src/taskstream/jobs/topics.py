"""The ``job:<uuid>`` topic: readable by the job's owner and by staff."""

from __future__ import annotations

from typing import Any

from taskstream.hub import register_topic
from taskstream.hub.database import db_call

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def may_read_job(user: Any, key: str) -> bool:
    if not (user is not None and user.is_authenticated and user.is_active):
        return False
    if user.is_staff:
        return True
    from taskstream.jobs.models import Job

    # Through the hub's database boundary: it closes a connection that went stale (a
    # database restart) before the query, where the async ORM would keep failing on it.
    return await db_call(Job.objects.filter(pk=key, owner_id=user.pk).exists)


def register_job_topic() -> None:
    register_topic("job", authorize=may_read_job, key_pattern=UUID_PATTERN)
