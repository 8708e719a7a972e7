"""Alert thresholds, each crossed by real processes: ``alert.raised`` on ``ops`` and a log
line once when crossed, ``alert.cleared`` once when it no longer is (no alert storms)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from celery import current_app

from taskstream.jobs import job_start
from taskstream.ops.models import Alert
from taskstream.testing import stop_group
from tests.conftest import LOG_DIR, ROOT
from tests.ops.monitoring import MonitorProcess, heartbeat_worker, next_frame

pytestmark = pytest.mark.django_db(transaction=True)

OFF = {"OPS_ALERT_QUEUE_WAIT": 0, "OPS_ALERT_FAILURE_RATE": 0, "OPS_ALERT_MISSED_BEAT": 0,
       "OPS_ALERT_WORKER_GONE": 0}


async def staff_on_ops(make_user: Any, session_cookie: Any, connect: Any) -> Any:
    staff = await sync_to_async(make_user)(is_staff=True)
    client = await connect(cookie=await sync_to_async(session_cookie)(staff))
    await client.subscribe("ops")
    return client


def is_alert(event: str, kind: str) -> Any:
    return lambda f: f["event"] == event and f["data"]["kind"] == kind


async def raised_then_cleared(client: Any, kind: str, clear: Any) -> list[dict[str, Any]]:
    """Wait for the alert, run ``clear``, wait for its end; every ops frame seen between."""
    seen: list[dict[str, Any]] = []
    raised = await next_frame(client, is_alert("alert.raised", kind), seen=seen)
    assert raised["data"]["value"] > raised["data"]["threshold"] or kind == "failure_rate"
    await clear()
    await next_frame(client, is_alert("alert.cleared", kind), seen=seen)
    # A few more summaries: the alert is not raised again once cleared.
    for _ in range(3):
        await next_frame(client, lambda f: f["event"] == "monitor.summary", seen=seen)
    return seen


def announced(seen: list[dict[str, Any]], event: str, kind: str) -> int:
    return sum(1 for f in seen if is_alert(event, kind)(f))


def assert_once(seen: list[dict[str, Any]], kind: str, monitor: MonitorProcess) -> None:
    assert announced(seen, "alert.raised", kind) == 1
    assert announced(seen, "alert.cleared", kind) == 1
    row = Alert.objects.get(kind=kind)
    assert row.cleared_at is not None and row.cleared_at >= row.raised_at
    log = monitor.text()
    assert log.count(f"ops alert raised: {row.key}") == 1
    assert log.count(f"ops alert cleared: {row.key}") == 1


async def test_queue_wait(server_env, start_worker, make_user, session_cookie, connect):
    client = await staff_on_ops(make_user, session_cookie, connect)
    queue = f"wait{secrets.token_hex(3)}"
    monitor = MonitorProcess(server_env, **{**OFF, "OPS_ALERT_QUEUE_WAIT": 1}).start()
    try:
        owner = await sync_to_async(make_user)()
        # No worker reads this queue yet: the job waits past the threshold.
        await sync_to_async(job_start)(kind="demo.noop", owner=owner, queue=queue)

        async def a_worker_takes_it() -> None:
            await asyncio.to_thread(start_worker, concurrency=1,
                                    CELERY_TASK_DEFAULT_QUEUE=queue)

        seen = await raised_then_cleared(client, "queue_wait", a_worker_takes_it)
        await sync_to_async(assert_once)(seen, "queue_wait", monitor)
    finally:
        await asyncio.to_thread(monitor.stop)


async def test_failure_rate(server_env, make_user, session_cookie, connect):
    client = await staff_on_ops(make_user, session_cookie, connect)
    queue = f"fail{secrets.token_hex(3)}"
    monitor = MonitorProcess(server_env, **{**OFF, "OPS_ALERT_FAILURE_RATE": 0.5}).start()
    worker = heartbeat_worker(server_env, queue=queue)
    await asyncio.to_thread(worker.start)
    try:
        await next_frame(client, lambda f: f["event"] == "monitor.summary")
        for _ in range(5):  # a string where a count belongs: TypeError in the worker
            current_app.send_task("demo.noop", kwargs={"updates": "many"}, queue=queue)

        async def successes_dilute_it() -> None:
            for _ in range(6):  # 5 failed of 11 finished: under one half
                current_app.send_task("demo.noop", kwargs={"updates": 0}, queue=queue)

        seen = await raised_then_cleared(client, "failure_rate", successes_dilute_it)
        await sync_to_async(assert_once)(seen, "failure_rate", monitor)
        raised = next(f for f in seen if is_alert("alert.raised", "failure_rate")(f))
        assert raised["data"]["value"] == 1.0 and "5 of 5 tasks failed" in raised["data"]["detail"]
    finally:
        await asyncio.to_thread(worker.kill)
        await asyncio.to_thread(monitor.stop)


async def test_worker_gone(server_env, make_user, session_cookie, connect):
    client = await staff_on_ops(make_user, session_cookie, connect)
    queue = f"gone{secrets.token_hex(3)}"
    monitor = MonitorProcess(server_env, **{**OFF, "OPS_ALERT_WORKER_GONE": 1}).start()
    worker = heartbeat_worker(server_env, queue=queue)
    await asyncio.to_thread(worker.start)
    try:
        await next_frame(client, lambda f: f["event"] == "monitor.summary" and any(
            w["online"] and w["hostname"].startswith(f"{worker.name}@")
            for w in f["data"]["workers"]))
        await asyncio.to_thread(worker.kill)

        async def it_comes_back() -> None:
            await asyncio.to_thread(worker.start)  # the same name: the same worker

        seen = await raised_then_cleared(client, "worker_gone", it_comes_back)
        await sync_to_async(assert_once)(seen, "worker_gone", monitor)
        raised = next(f for f in seen if is_alert("alert.raised", "worker_gone")(f))
        assert raised["data"]["key"].startswith(f"worker_gone:{worker.name}@")
    finally:
        await asyncio.to_thread(worker.kill)
        await asyncio.to_thread(monitor.stop)


async def test_missed_beat(server_env, make_user, session_cookie, connect):
    client = await staff_on_ops(make_user, session_cookie, connect)
    monitor = MonitorProcess(server_env, **{**OFF, "OPS_ALERT_MISSED_BEAT": 1}).start()
    beat: subprocess.Popen[bytes] | None = None
    # Its runs go to a queue nobody reads: the test needs the beat, not its tasks.
    queue = f"beat{secrets.token_hex(3)}"
    try:
        def start_beat() -> subprocess.Popen[bytes]:
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **server_env, "CELERY_TASK_DEFAULT_QUEUE": queue,
                   "TASKSTREAM_JSON": json.dumps({"BEAT_LOCK_TTL": 5})}
            with (LOG_DIR / f"{queue}.log").open("ab") as out:
                return subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "example", "beat", "-l", "INFO",
                     "-S", "taskstream.periodic.scheduler:SingleBeatScheduler"],
                    env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)

        async def a_beat_starts() -> None:
            nonlocal beat
            beat = await asyncio.to_thread(start_beat)

        seen = await raised_then_cleared(client, "missed_beat", a_beat_starts)
        await sync_to_async(assert_once)(seen, "missed_beat", monitor)
    finally:
        if beat is not None:
            await asyncio.to_thread(stop_group, beat)
        await asyncio.to_thread(monitor.stop)
