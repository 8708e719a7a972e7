"""The ``job:<uuid>`` topic: readable by the job's owner and by staff."""

from __future__ import annotations

from typing import Any

from taskstream.hub import register_topic

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def may_read_job(user: Any, key: str) -> bool:
    if not (user is not None and user.is_authenticated and user.is_active):
        return False
    if user.is_staff:
        return True
    from taskstream.jobs.models import Job

    return await Job.objects.filter(pk=key, owner_id=user.pk).aexists()


def register_job_topic() -> None:
    register_topic("job", authorize=may_read_job, key_pattern=UUID_PATTERN)
