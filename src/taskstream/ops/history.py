"""The events monitor's durable history: what it writes to the database, and when.

The monitor hands every Celery event to :meth:`History.add` (cheap: a tuple appended, a
worker's fields set); :meth:`History.flush` writes what came since the last flush in one
transaction: task events (one ``bulk_create``), per-minute counts (one UPDATE per minute
touched) and the workers that changed. :meth:`History.prune` keeps the tables bounded by
``OPS_HISTORY_MAX_EVENTS`` and ``OPS_HISTORY_MAX_AGE``. Everything is read back after a
restart: the workers as they were (their heartbeats judged from then on), the minutes.

Only the monitor writes these tables; pages read them through :mod:`taskstream.ops.selectors`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from taskstream.ops.models import Alert, TaskEvent, TaskMinute, WorkerRecord

logger = logging.getLogger("taskstream.ops")

TASK_KINDS = {"task-received": "received", "task-started": "started",
              "task-succeeded": "succeeded", "task-failed": "failed",
              "task-retried": "retried", "task-revoked": "revoked"}
COUNTS = ("received", "started", "succeeded", "failed", "retried", "revoked")
# Events held while the database cannot be written; beyond it the oldest are dropped (and
# counted), so a database outage costs history, never the monitor's memory.
MAX_BUFFER = 100_000
# Task names by id: only task-received names the task; later events are matched here.
NAME_CACHE = 20_000
BATCH = 1_000


def _timestamp(value: Any) -> float:
    try:
        timestamp = float(value)
        datetime.fromtimestamp(timestamp, UTC)  # in range
        return timestamp
    except (TypeError, ValueError, OverflowError, OSError):
        return time.time()


def _at(timestamp: Any) -> datetime:
    return datetime.fromtimestamp(_timestamp(timestamp), UTC)


class History:
    def __init__(self) -> None:
        self.workers: dict[str, WorkerRecord] = {}
        self._dirty: set[str] = set()
        # (task_id, name, kind, hostname, timestamp, runtime, detail) per event
        self._events: deque[tuple[str, str, str, str, float, float | None, str]] = deque()
        # Unix minute -> counts of COUNTS, then the summed runtime
        self._minutes: dict[int, list[float]] = {}
        self._names: OrderedDict[str, str] = OrderedDict()
        self.dropped = 0
        self.written = 0
        self.since_prune = 0
        self.started = datetime.now(UTC)

    # -- reading back after a restart ------------------------------------------------------

    def load(self) -> None:
        """The workers as the last monitor left them; heartbeats are judged from now on."""
        self.workers = {w.hostname: w for w in WorkerRecord.objects.all()}
        self.started = datetime.now(UTC)

    # -- events in (the hot path: no database) -----------------------------------------------

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind.startswith("worker-"):
            self._worker_event(kind, event)
            return
        count = TASK_KINDS.get(kind)
        if count is None:
            return  # task-sent, task-rejected…: not history
        task_id = str(event.get("uuid") or "")[:255]
        timestamp = _timestamp(event.get("timestamp"))
        name = str(event.get("name") or "")
        if name:
            self._names[task_id] = name
            if len(self._names) > NAME_CACHE:
                self._names.popitem(last=False)
        else:
            name = self._names.get(task_id, "")
        runtime = event.get("runtime") if count == "succeeded" else None
        detail = ""
        if count in ("failed", "retried"):
            detail = str(event.get("exception") or "")
        elif count == "revoked":
            detail = "terminated" if event.get("terminated") else "revoked"
            if event.get("expired"):
                detail = "expired"
        hostname = str(event.get("hostname") or "")[:255]
        if len(self._events) >= MAX_BUFFER:
            self._events.popleft()
            self.dropped += 1
        runtime = float(runtime) if runtime is not None else None
        # A plain tuple: a model instance per event cost more than the rest of the handler.
        self._events.append((task_id, name[:200], count, hostname, timestamp, runtime,
                             detail[:500]))
        row = self._minutes.setdefault(int(timestamp // 60), [0.0] * (len(COUNTS) + 1))
        row[COUNTS.index(count)] += 1
        if runtime is not None:
            row[-1] += runtime
        if hostname:  # a task event is a sign of life too (workers without heartbeats)
            self._alive(hostname, _at(timestamp), event)

    def _record(self, hostname: str, at: datetime) -> WorkerRecord:
        worker = self.workers.get(hostname)
        if worker is None:
            worker = WorkerRecord(hostname=hostname, first_seen_at=at)
            self.workers[hostname] = worker
        return worker

    def _alive(self, hostname: str, at: datetime, event: dict[str, Any]) -> None:
        worker = self._record(hostname, at)
        if not worker.online:
            worker.online, worker.online_at = True, at
            worker.offline_at, worker.offline_reason = None, ""
            logger.info("monitor: worker %s online", hostname)
        if worker.heartbeat_at is None or at > worker.heartbeat_at:
            worker.heartbeat_at = at
        self._dirty.add(hostname)

    def _worker_event(self, kind: str, event: dict[str, Any]) -> None:
        hostname = str(event.get("hostname") or "")[:255]
        if not hostname:
            return
        at = _at(event.get("timestamp"))
        if kind == "worker-offline":
            worker = self._record(hostname, at)
            worker.online, worker.offline_at = False, at
            worker.offline_reason = WorkerRecord.Offline.SHUTDOWN
            worker.active = 0
            self._dirty.add(hostname)
            logger.info("monitor: worker %s went offline (shut down)", hostname)
            return
        self._alive(hostname, at, event)
        worker = self.workers[hostname]
        try:
            worker.heartbeat_interval = float(event.get("freq") or worker.heartbeat_interval)
            worker.active = int(event.get("active") or 0)
            worker.processed = int(event.get("processed") or worker.processed)
        except (TypeError, ValueError):
            pass
        software = " ".join(str(event.get(k) or "") for k in ("sw_ident", "sw_ver")).strip()
        if software:
            worker.software = software[:100]

    def set_concurrency(self, hostname: str, concurrency: int) -> None:
        worker = self.workers.get(hostname)
        if worker is not None and worker.concurrency != concurrency:
            worker.concurrency = concurrency
            self._dirty.add(hostname)

    # -- judging silence -------------------------------------------------------------------

    def expire(self, now: datetime) -> list[WorkerRecord]:
        """Workers whose heartbeats stopped: offline (``lost``) from now; those newly lost.

        A worker read back from the database gets a full window from the monitor's start:
        its heartbeats went to no one while no monitor ran.
        """
        lost = []
        for hostname, worker in self.workers.items():
            if not worker.online:
                continue
            last = max(worker.heartbeat_at or self.started, self.started)
            if now > last + timedelta(seconds=2 * worker.heartbeat_interval):
                worker.online, worker.offline_at = False, now
                worker.offline_reason = WorkerRecord.Offline.LOST
                worker.active = 0
                self._dirty.add(hostname)
                lost.append(worker)
                logger.warning("monitor: worker %s lost: no heartbeat since %s", hostname,
                               worker.heartbeat_at.isoformat() if worker.heartbeat_at
                               else "it was first seen")
        return lost

    # -- writing -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._events)

    def flush(self) -> int:
        """Write what came since the last flush; the task events written. Raises the
        database's error (what was not written stays for the next flush)."""
        events = list(self._events)
        minutes = dict(self._minutes)
        dirty = [self.workers[h] for h in self._dirty if h in self.workers]
        if not events and not minutes and not dirty:
            return 0
        with transaction.atomic():
            self._insert_events(events)
            for minute, row in minutes.items():
                self._add_minute(datetime.fromtimestamp(minute * 60, UTC), row)
            for worker in dirty:
                if worker.pk is None:  # another monitor may have written it meanwhile
                    worker.pk = (WorkerRecord.objects.filter(hostname=worker.hostname)
                                 .values_list("pk", flat=True).first())
                worker.save()
        for _ in range(len(events)):
            self._events.popleft()
        for minute in minutes:
            del self._minutes[minute]  # events added meanwhile? not here: one thread
        self._dirty.clear()
        self.written += len(events)
        self.since_prune += len(events)
        return len(events)

    @staticmethod
    def _insert_events(events: list[tuple[str, str, str, str, float, float | None, str]]
                       ) -> None:
        """One executemany of plain tuples: Django's ``bulk_create`` spent ~0.1 ms of CPU per
        row preparing model instances, most of the monitor's time at 1,000 events/s."""
        if not events:
            return
        meta = TaskEvent._meta
        quote = connection.ops.quote_name
        column = {field.name: str(field.column) for field in meta.concrete_fields}
        columns = ", ".join(quote(column[name]) for name in
                            ("task_id", "name", "kind", "hostname", "at", "runtime", "detail"))
        sql = (f"INSERT INTO {quote(meta.db_table)} ({columns}) "
               f"VALUES (%s, %s, %s, %s, %s, %s, %s)")
        adapt = connection.ops.adapt_datetimefield_value
        rows = [(t, n, k, h, adapt(datetime.fromtimestamp(at, UTC)), r, d)
                for t, n, k, h, at, r, d in events]
        with connection.cursor() as cursor:
            for start in range(0, len(rows), BATCH):
                cursor.executemany(sql, rows[start:start + BATCH])

    @staticmethod
    def _add_minute(minute: datetime, row: list[float]) -> None:
        changes: dict[str, Any] = {name: F(name) + int(row[i])
                                   for i, name in enumerate(COUNTS) if row[i]}
        if row[-1]:
            changes["runtime_total"] = F("runtime_total") + row[-1]
        if not changes:
            return
        if TaskMinute.objects.filter(minute=minute).update(**changes):
            return
        fields: dict[str, Any] = {name: int(row[i]) for i, name in enumerate(COUNTS)}
        try:
            with transaction.atomic():
                TaskMinute.objects.create(minute=minute, runtime_total=row[-1], **fields)
        except IntegrityError:  # another writer created it between the two statements
            TaskMinute.objects.filter(minute=minute).update(**changes)

    def prune(self, *, now: datetime, max_events: int, max_age: float) -> dict[str, int]:
        """Delete what is past the bounds: events beyond the newest ``max_events`` or older
        than ``max_age`` seconds; minutes, cleared alerts and offline workers older than it."""
        from django.db.models import Max

        cutoff = now - timedelta(seconds=max_age)
        deleted = {"events": TaskEvent.objects.filter(at__lt=cutoff).delete()[0]}
        newest = TaskEvent.objects.aggregate(top=Max("id"))["top"]
        if newest is not None and newest > max_events:
            # Ids only grow (one writer, append-only), so the newest N are the N top ids.
            deleted["events"] += TaskEvent.objects.filter(id__lte=newest - max_events).delete()[0]
        # The overview shows the last hour, whatever the age bound.
        deleted["minutes"] = TaskMinute.objects.filter(
            minute__lt=min(cutoff, now - timedelta(hours=2))).delete()[0]
        deleted["alerts"] = Alert.objects.filter(cleared_at__lt=cutoff).delete()[0]
        gone = list(WorkerRecord.objects.filter(online=False, offline_at__lt=cutoff)
                    .values_list("hostname", flat=True))
        if gone:
            deleted["workers"] = WorkerRecord.objects.filter(hostname__in=gone).delete()[0]
            for hostname in gone:
                self.workers.pop(hostname, None)
        self.since_prune = 0
        return deleted
