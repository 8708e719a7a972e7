"""Reads of the ops app: the audit trail, and the dashboard's view of the jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from taskstream.ops.models import AuditRecord

AUDIT_PAGE_SIZE = 50


def audit_for(*, target_type: str, target_id: str, limit: int = 50) -> list[AuditRecord]:
    """The newest records about one object (a job's page shows them)."""
    return list(AuditRecord.objects.filter(target_type=target_type, target_id=str(target_id))
                [:limit])


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    count: int
    page: int
    pages: int


def audit_page(*, page: int = 1, action: str | None = None,
               outcome: str | None = None) -> AuditPage:
    """One page of the whole trail, optionally of one action or outcome."""
    rows = AuditRecord.objects.all()
    if action:
        rows = rows.filter(action=action)
    if outcome:
        rows = rows.filter(outcome=outcome)
    count = rows.count()
    pages = max(1, -(-count // AUDIT_PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * AUDIT_PAGE_SIZE
    return AuditPage(records=list(rows[start:start + AUDIT_PAGE_SIZE]), count=count, page=page,
                     pages=pages)


# -- the dashboard's reads (jobs' table, read here so jobs needs no code for staff pages) ---

@dataclass(frozen=True)
class Overview:
    minutes: list[tuple[int, int]]  # (succeeded, failed) per minute, oldest first, 60 of them
    succeeded: int
    failed: int
    failure_rate: float | None  # failed / finished in the hour, None when nothing finished
    queued: int  # queued or retrying: waiting for a worker
    running: int
    stuck: int


def jobs_overview(*, now: datetime | None = None) -> Overview:
    """The last hour of jobs by minute, and what waits and runs now (a few aggregate queries)."""
    from django.db.models import Count
    from django.db.models.functions import TruncMinute
    from django.utils import timezone

    from taskstream.jobs.models import Job

    now = now or timezone.now()
    start = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
    rows = (Job.objects.filter(finished_at__gte=start, state__in=("succeeded", "failed"))
            .annotate(minute=TruncMinute("finished_at")).order_by()
            .values_list("minute", "state").annotate(n=Count("pk")))
    buckets = [[0, 0] for _ in range(60)]
    for minute, state, count in rows:
        index = int((minute - start).total_seconds() // 60)
        if 0 <= index < 60:
            buckets[index][0 if state == "succeeded" else 1] += count
    succeeded = sum(b[0] for b in buckets)
    failed = sum(b[1] for b in buckets)
    active = dict(Job.objects.filter(state__in=("queued", "retrying", "running")).order_by()
                  .values_list("state").annotate(n=Count("pk")))
    return Overview(minutes=[(s, f) for s, f in buckets], succeeded=succeeded, failed=failed,
                    failure_rate=failed / (succeeded + failed) if succeeded + failed else None,
                    queued=active.get("queued", 0) + active.get("retrying", 0),
                    running=active.get("running", 0), stuck=len(jobs_stuck(now=now, limit=100)))


def jobs_failed(*, kind: str | None = None, limit: int = 50) -> list[Any]:
    """The newest failed jobs (with their traceback: staff only)."""
    from taskstream.jobs.models import Job

    rows = Job.objects.filter(state="failed").select_related("owner").order_by("-finished_at")
    if kind:
        rows = rows.filter(kind=kind)
    return list(rows[:limit])


def failed_kinds() -> dict[str, int]:
    """Kinds with failed jobs, and how many."""
    from django.db.models import Count

    from taskstream.jobs.models import Job

    return dict(Job.objects.filter(state="failed").order_by("kind").values_list("kind")
                .annotate(n=Count("pk")))


def jobs_stuck(*, now: datetime | None = None, limit: int = 50) -> list[Any]:
    """Running jobs that run longer than ``OPS_LONG_RUNNING`` or whose heartbeat is late."""
    from django.db.models import Q
    from django.utils import timezone

    from taskstream.conf import conf
    from taskstream.jobs.models import Job

    now = now or timezone.now()
    long_ago = now - timedelta(seconds=conf.OPS_LONG_RUNNING)
    late = now - timedelta(seconds=conf.JOB_HEARTBEAT_TIMEOUT)
    return list(Job.objects.filter(state="running").filter(
        Q(started_at__lt=long_ago) | Q(heartbeat_at__lt=late)).select_related("owner")
        .order_by("started_at")[:limit])
