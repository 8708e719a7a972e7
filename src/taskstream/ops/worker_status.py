"""The workers page's read: each worker, online or not, its heartbeat, concurrency and the
tasks it runs now.

Two sources, merged by hostname (:func:`worker_rows`):

* the events monitor's durable worker table, through ``selectors.workers_list`` when the
  installed ops app has it: every worker it has heard of, offline ones included, with the
  last heartbeat;
* Celery's ``app.control.inspect()`` (``stats`` and ``active``, asked together, each waiting
  ``timeout`` seconds for replies): the workers that answer now, their pool size and the
  tasks they run. A worker that is down does not answer, so alone it lists the online ones.

The page also follows ``monitor.summary`` on ``ops`` live (heartbeats, online/offline).

Answers are kept ``_TTL`` seconds per process, so staff reloading the page do not send a
broadcast each.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("taskstream.ops")

_TTL = 3.0
_lock = threading.Lock()
_cached: tuple[float, list[WorkerInfo] | None] = (-_TTL, None)


@dataclass(frozen=True)
class ActiveTask:
    task_id: str
    name: str
    started_at: datetime | None
    job_id: str | None = None  # the taskstream job this task runs, if any


@dataclass(frozen=True)
class WorkerInfo:
    hostname: str
    concurrency: int | None
    processed: int | None  # tasks it received since it started
    pid: int | None
    uptime: int | None  # seconds
    active: list[ActiveTask] = field(default_factory=list)


def workers_online(*, timeout: float = 1.0, fresh: bool = False) -> list[WorkerInfo] | None:
    """The workers that answer, sorted by hostname; None when the broker cannot be asked."""
    global _cached
    with _lock:
        at, found = _cached
        if not fresh and time.monotonic() - at < _TTL:
            return found
        found = _ask(timeout)
        _cached = (time.monotonic(), found)
        return found


def _ask(timeout: float) -> list[WorkerInfo] | None:
    from celery import current_app

    inspect = current_app.control.inspect(timeout=timeout)
    try:
        with ThreadPoolExecutor(max_workers=2) as threads:  # one timeout, not two in a row
            stats_f, active_f = threads.submit(inspect.stats), threads.submit(inspect.active)
            stats: dict[str, Any] = stats_f.result() or {}
            active: dict[str, Any] = active_f.result() or {}
    except Exception as exc:
        logger.warning("could not inspect the workers: %s", exc)
        return None
    tasks = {host: [_task(t) for t in (running or [])] for host, running in active.items()}
    jobs = _jobs_of([t.task_id for running in tasks.values() for t in running])
    found = []
    for host in sorted(set(stats) | set(active)):
        info = stats.get(host) or {}
        pool = info.get("pool") or {}
        total = info.get("total") or {}
        found.append(WorkerInfo(
            hostname=host, concurrency=_int(pool.get("max-concurrency")),
            processed=sum(v for v in total.values() if isinstance(v, int)) if total else 0,
            pid=_int(info.get("pid")), uptime=_int(info.get("uptime")),
            active=[ActiveTask(t.task_id, t.name, t.started_at, jobs.get(t.task_id))
                    for t in tasks.get(host, [])]))
    return found


def _task(raw: dict[str, Any]) -> ActiveTask:
    start = raw.get("time_start")
    started = (datetime.fromtimestamp(start, tz=UTC) if isinstance(start, int | float)
               else None)
    return ActiveTask(task_id=str(raw.get("id", "")), name=str(raw.get("name", "")),
                      started_at=started)


def _jobs_of(task_ids: list[str]) -> dict[str, str]:
    from django.apps import apps

    if not task_ids or not apps.is_installed("taskstream.jobs"):
        return {}
    from taskstream.jobs.models import Job

    return {task: str(pk) for pk, task in Job.objects.filter(celery_task_id__in=task_ids)
            .values_list("pk", "celery_task_id")}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class WorkerRow:
    hostname: str
    online: bool
    answered: bool  # it answered the inspect just now
    heartbeat_at: datetime | None
    concurrency: int | None
    processed: int | None
    offline_reason: str  # "", "shutdown" or "lost" (the monitor's word)
    active: list[ActiveTask] = field(default_factory=list)


def worker_rows(*, timeout: float = 1.0) -> tuple[list[WorkerRow], bool]:
    """Every worker known to the monitor or answering now (online first, then by name), and
    whether the inspect got through to the broker."""
    from taskstream.ops import selectors

    recorded = getattr(selectors, "workers_list", None)  # the monitor's table, if installed
    known = {w.hostname: w for w in (recorded() if recorded is not None else [])}
    inspected = workers_online(timeout=timeout)
    answered = {w.hostname: w for w in inspected or []}
    rows = []
    for host in set(known) | set(answered):
        record, now = known.get(host), answered.get(host)
        rows.append(WorkerRow(
            hostname=host, online=now is not None or bool(record and record.online),
            answered=now is not None,
            heartbeat_at=getattr(record, "heartbeat_at", None),
            concurrency=(now.concurrency if now is not None and now.concurrency is not None
                         else getattr(record, "concurrency", None)),
            processed=(getattr(record, "processed", None) if record is not None
                       else now.processed if now is not None else None),
            offline_reason="" if now is not None else getattr(record, "offline_reason", ""),
            active=now.active if now is not None else []))
    rows.sort(key=lambda r: (not r.online, r.hostname))
    return rows, inspected is not None
