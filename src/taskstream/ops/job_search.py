"""The ops jobs page's read: every user's jobs, searched and filtered, one page at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PAGE_SIZE = 50


@dataclass(frozen=True)
class JobFilters:
    q: str = ""  # a job or task id (exact), else part of the kind, owner or error message
    kind: str = ""
    state: str = ""
    owner: str = ""  # a username, exactly
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


@dataclass(frozen=True)
class JobPage:
    jobs: list[Any]
    count: int
    page: int
    pages: int


def job_search(*, filters: JobFilters, page: int = 1) -> JobPage:
    """Newest first; top-level jobs and canvas steps alike (a step links to its parent)."""
    from django.db.models import Q

    from taskstream.jobs.models import Job

    rows = Job.objects.select_related("owner").order_by("-created_at", "-pk")
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.state:
        rows = rows.filter(state=filters.state)
    if filters.owner:
        rows = rows.filter(owner__username=filters.owner)
    if filters.since:
        rows = rows.filter(created_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(created_at__lt=filters.until)
    q = filters.q.strip()
    if q:
        try:
            rows = rows.filter(Q(pk=uuid.UUID(q)) | Q(celery_task_id=q))
        except ValueError:
            rows = rows.filter(Q(kind__icontains=q) | Q(owner__username__icontains=q)
                               | Q(error_message__icontains=q) | Q(celery_task_id=q))
    count = rows.count()
    pages = max(1, -(-count // PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    return JobPage(jobs=list(rows[start:start + PAGE_SIZE]), count=count, page=page,
                   pages=pages)


def job_kinds() -> list[str]:
    """Every kind that has jobs (the kind filter's choices)."""
    from taskstream.jobs.models import Job

    return list(Job.objects.order_by("kind").values_list("kind", flat=True).distinct()[:500])
