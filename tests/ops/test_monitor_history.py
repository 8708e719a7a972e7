"""The monitor's durable history: real workers' events in the database, bounded, read back
after a restart; a SIGKILLed worker offline within its heartbeat window."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from taskstream.jobs import job_start
from taskstream.ops.history import History
from taskstream.ops.models import Alert, TaskEvent, TaskMinute, WorkerRecord
from taskstream.ops.selectors import task_events, workers_list
from tests.ops.monitoring import MonitorProcess, heartbeat_worker, next_frame, until

pytestmark = pytest.mark.django_db(transaction=True)

OFF = {"OPS_ALERT_QUEUE_WAIT": 0, "OPS_ALERT_FAILURE_RATE": 0, "OPS_ALERT_MISSED_BEAT": 0,
       "OPS_ALERT_WORKER_GONE": 0}


def _worker(name: str) -> WorkerRecord | None:
    return WorkerRecord.objects.filter(hostname__startswith=f"{name}@").first()


async def test_history_is_durable_and_a_sigkilled_worker_goes_offline(
        server_env, make_user, session_cookie, connect):
    staff = await sync_to_async(make_user)(is_staff=True)
    client = await connect(cookie=await sync_to_async(session_cookie)(staff))
    await client.subscribe("ops")
    queue = f"history{secrets.token_hex(3)}"
    monitor = MonitorProcess(server_env, **OFF).start()
    worker = heartbeat_worker(server_env, queue=queue)
    await asyncio.to_thread(worker.start)
    try:
        row = await until(lambda: (w := _worker(worker.name)) and w.online
                          and w.concurrency == 1 and w, what="the worker online, pool size 1")
        assert row.heartbeat_interval == 1.0 and row.software.startswith("py-celery")
        owner = await sync_to_async(make_user)()
        for _ in range(2):
            await sync_to_async(job_start)(kind="demo.noop", owner=owner, queue=queue)

        def finished() -> list[TaskEvent]:
            return task_events(kind="succeeded", hostname=row.hostname)

        done = await until(lambda: len(finished()) >= 2 and finished(), what="2 successes")
        assert {e.name for e in done} == {"demo.noop"}
        assert all(e.runtime is not None and e.runtime >= 0 for e in done)
        kinds = await sync_to_async(lambda: set(TaskEvent.objects.filter(
            task_id=done[0].task_id).values_list("kind", flat=True)))()
        assert kinds == {"received", "started", "succeeded"}
        summary = await next_frame(client, lambda f: f["event"] == "monitor.summary"
                                   and f["data"]["tasks"]["succeeded"] >= 2)
        mine = [w for w in summary["data"]["workers"] if w["hostname"] == row.hostname]
        assert mine and mine[0]["online"] and mine[0]["concurrency"] == 1

        await asyncio.to_thread(worker.kill)  # no worker-offline event: only silence
        killed = time.monotonic()
        gone = await until(lambda: (w := _worker(worker.name)) and not w.online and w,
                           what="the worker offline")
        # Two heartbeat intervals (1 s each) and a tick; generous for a loaded machine.
        assert time.monotonic() - killed < 15
        assert gone.offline_reason == WorkerRecord.Offline.LOST
        view = await sync_to_async(workers_list)()
        assert [(v.online, v.offline_reason) for v in view if v.hostname == row.hostname] == [
            (False, "lost")]

        # A new monitor starts from the database: the history and the worker's state stay.
        await asyncio.to_thread(monitor.stop)
        kept = await sync_to_async(TaskEvent.objects.filter(hostname=row.hostname).count)()
        assert kept >= 6
        monitor = MonitorProcess(server_env, **OFF).start()
        summary = await next_frame(client, lambda f: f["event"] == "monitor.summary"
                                   and f["data"]["events"] == 0)
        assert summary["data"]["tasks"]["succeeded"] >= 2  # the hour, read back
        mine = [w for w in summary["data"]["workers"] if w["hostname"] == row.hostname]
        assert mine and not mine[0]["online"] and mine[0]["offline_reason"] == "lost"
        assert await sync_to_async(TaskEvent.objects.filter(hostname=row.hostname).count)() \
            == kept
    finally:
        await asyncio.to_thread(worker.kill)
        await asyncio.to_thread(monitor.stop)


def _event(kind: str, task: str, at: float, **extra: object) -> dict[str, object]:
    return {"type": f"task-{kind}", "uuid": task, "hostname": "celery@prune",
            "timestamp": at, **extra}


def test_history_is_pruned_to_its_bounds():
    history = History()
    now = datetime.now(UTC)
    old = (now - timedelta(days=3)).timestamp()
    for i in range(4):  # three days old
        history.add(_event("received", f"old{i}", old, name="demo.old"))
    for i in range(30):
        history.add(_event("received", f"new{i}", now.timestamp(), name="demo.new"))
        history.add(_event("succeeded", f"new{i}", now.timestamp(), runtime=0.5))
    history.add({"type": "worker-offline", "hostname": "celery@gone", "timestamp": old})
    assert history.flush() == 64
    assert TaskMinute.objects.count() == 2
    Alert.objects.create(key="queue_wait", kind="queue_wait", value=1, threshold=1,
                         raised_at=now - timedelta(days=3), cleared_at=now - timedelta(days=3))

    deleted = history.prune(now=now, max_events=25, max_age=86400)

    assert deleted["events"] == 64 - 25 and TaskEvent.objects.count() == 25
    newest = TaskEvent.objects.order_by("-id").first()
    assert newest is not None and (newest.task_id, newest.kind) == ("new29", "succeeded")
    assert not TaskEvent.objects.filter(name="demo.old").exists()
    # The name came with task-received; the success is matched to it.
    assert set(TaskEvent.objects.values_list("name", flat=True)) == {"demo.new"}
    assert list(TaskMinute.objects.values_list("succeeded", flat=True)) == [30]
    assert not Alert.objects.exists()
    assert not WorkerRecord.objects.filter(hostname="celery@gone").exists()
    assert "celery@gone" not in history.workers


def test_a_flush_adds_to_the_minute_another_flush_wrote():
    history = History()
    at = datetime.now(UTC).replace(second=30).timestamp()
    history.add(_event("failed", "a", at, exception="ValueError('x')"))
    history.flush()
    history.add(_event("failed", "b", at + 1))
    history.add(_event("succeeded", "c", at + 2, runtime=2.0))
    history.flush()
    minute = TaskMinute.objects.get()
    assert (minute.failed, minute.succeeded, minute.runtime_total) == (2, 1, 2.0)
    assert TaskEvent.objects.get(task_id="a").detail == "ValueError('x')"


def test_two_monitors_hearing_one_new_worker_keep_one_row():
    first, second = History(), History()
    at = datetime.now(UTC).timestamp()
    for history in (first, second):
        history.add({"type": "worker-heartbeat", "hostname": "celery@twice", "timestamp": at,
                     "freq": 2.0, "active": 1, "processed": 3})
        history.flush()  # the second's INSERT would break the unique hostname
    assert list(WorkerRecord.objects.values_list("hostname", "active")) == [("celery@twice", 1)]
