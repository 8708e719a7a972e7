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


# -- the events monitor's history (written by the monitor; read by pages and the monitor) --

@dataclass(frozen=True)
class WorkerView:
    """A worker as pages show it; ``online`` judged now from its last heartbeat."""

    hostname: str
    online: bool
    heartbeat_at: datetime | None
    heartbeat_interval: float
    concurrency: int | None
    active: int
    processed: int
    first_seen_at: datetime
    online_at: datetime | None
    offline_at: datetime | None
    offline_reason: str  # "", "shutdown" or "lost"
    software: str

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"hostname": self.hostname, "online": self.online,
                "heartbeat_at": iso(self.heartbeat_at), "concurrency": self.concurrency,
                "active": self.active, "processed": self.processed,
                "online_at": iso(self.online_at), "offline_at": iso(self.offline_at),
                "offline_reason": self.offline_reason,
                # The names of the summary's first shape (Celery's state), kept for pages
                # written against it: ``alive`` = ``online``, ``heartbeat`` in Unix seconds.
                "alive": self.online,
                "heartbeat": self.heartbeat_at.timestamp() if self.heartbeat_at else None}


def workers_list(*, now: datetime | None = None) -> list[WorkerView]:
    """Every worker the monitor knows (online first, then by name): the workers page's rows.

    A worker whose heartbeat is older than two of its intervals reads offline (``lost``)
    even before the monitor has written so, or while no monitor runs.
    """
    from django.utils import timezone

    from taskstream.ops.models import WorkerRecord

    now = now or timezone.now()
    views = []
    for w in WorkerRecord.objects.all():
        online = w.is_online(now)
        reason = w.offline_reason or ("" if online else WorkerRecord.Offline.LOST)
        views.append(WorkerView(
            hostname=w.hostname, online=online, heartbeat_at=w.heartbeat_at,
            heartbeat_interval=w.heartbeat_interval, concurrency=w.concurrency,
            active=w.active if online else 0, processed=w.processed,
            first_seen_at=w.first_seen_at, online_at=w.online_at,
            offline_at=w.offline_at if not online else None,
            offline_reason=reason if not online else "", software=w.software))
    return sorted(views, key=lambda v: (not v.online, v.hostname))


def task_events(*, task_id: str | None = None, hostname: str | None = None,
                kind: str | None = None, name: str | None = None,
                limit: int = 100) -> list[Any]:
    """The newest task events the monitor recorded (``TaskEvent`` rows), filtered."""
    from taskstream.ops.models import TaskEvent

    rows = TaskEvent.objects.all()
    if task_id:
        rows = rows.filter(task_id=task_id)
    if hostname:
        rows = rows.filter(hostname=hostname)
    if kind:
        rows = rows.filter(kind=kind)
    if name:
        rows = rows.filter(name=name)
    return list(rows.order_by("-id")[:limit])


def task_outcomes(*, now: datetime, minutes: int) -> tuple[int, int]:
    """(failed, finished) Celery tasks in the last ``minutes`` minutes (this one included)."""
    from django.db.models import Sum

    from taskstream.ops.models import TaskMinute

    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    found = TaskMinute.objects.filter(minute__gte=start).aggregate(
        ok=Sum("succeeded"), bad=Sum("failed"))
    failed = found["bad"] or 0
    return failed, failed + (found["ok"] or 0)


def queue_wait(*, now: datetime | None = None) -> float | None:
    """Seconds the oldest job waiting for a worker has waited (queued, or retrying and due);
    None when none waits or the jobs app is not installed."""
    from django.apps import apps
    from django.db.models import Min
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    if not apps.is_installed("taskstream.jobs"):
        return None
    from taskstream.jobs.models import Job

    now = now or timezone.now()
    # A job waits from its (re)queueing, or from its retry's due time.
    oldest = (Job.objects.filter(state__in=("queued", "retrying"))
              .annotate(since=Coalesce("eta", "updated_at")).filter(since__lte=now)
              .aggregate(oldest=Min("since"))["oldest"])
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else None


def beat_leading() -> bool | None:
    """Whether a beat holds the single-beat lock now (taskstream's ``SingleBeatScheduler``
    renews it every tick); None without the periodic app or when Redis cannot be asked."""
    from django.apps import apps

    if not apps.is_installed("taskstream.periodic"):
        return None
    from taskstream.hub.redis import sync_client
    from taskstream.periodic.scheduler import lock_key

    try:
        return bool(sync_client().exists(lock_key()))
    except Exception:
        return None


def alerts_open() -> list[Any]:
    """Open alerts, newest first (``Alert`` rows)."""
    from taskstream.ops.models import Alert

    return list(Alert.objects.filter(cleared_at=None))


def alerts_recent(*, limit: int = 50) -> list[Any]:
    """The newest alerts, open or cleared."""
    from taskstream.ops.models import Alert

    return list(Alert.objects.all()[:limit])


def monitor_overview(*, now: datetime | None = None) -> dict[str, Any]:
    """The monitor's hour and its workers, as the overview shows them and as
    ``monitor.summary`` carries them (one shape for the page's first paint and live)."""
    from django.utils import timezone

    from taskstream.ops.chart import throughput_svg
    from taskstream.ops.models import TaskMinute

    now = now or timezone.now()
    start = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
    buckets = [[0, 0] for _ in range(60)]
    totals = dict.fromkeys(("received", "started", "succeeded", "failed", "retried",
                            "revoked"), 0)
    runtime = 0.0
    for row in TaskMinute.objects.filter(minute__gte=start):
        index = int((row.minute - start).total_seconds() // 60)
        if 0 <= index < 60:
            buckets[index] = [row.succeeded, row.failed]
        for key in totals:
            totals[key] += getattr(row, key)
        runtime += row.runtime_total
    minutes = [(ok, bad) for ok, bad in buckets]
    finished = totals["succeeded"] + totals["failed"]
    workers = workers_list(now=now)
    return {
        "tasks": totals,
        "failure_rate": totals["failed"] / finished if finished else None,
        "runtime_avg": runtime / totals["succeeded"] if totals["succeeded"] else None,
        "queue_wait": queue_wait(now=now),
        "workers_up": sum(1 for w in workers if w.online),
        "workers": [w.as_dict() for w in workers],
        "alerts": [a.payload() for a in alerts_open()],
        "minutes": minutes,
        "chart_svg": throughput_svg(minutes, what="Celery tasks", rate=True),
    }
