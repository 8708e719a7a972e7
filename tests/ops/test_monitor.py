"""The events monitor: a real worker's task events become summaries on ``ops``."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import subprocess
import sys
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async
from celery import current_app

from taskstream.jobs import job_start
from taskstream.testing import stop_group
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def start_monitor(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "taskstream.ops.monitor"], env=env,
                            cwd=ROOT, start_new_session=True)


async def test_task_events_reach_ops_as_bounded_summaries(server_env, start_worker, make_user,
                                                          session_cookie, connect):
    staff = await sync_to_async(make_user)(is_staff=True)
    client = await connect(cookie=await sync_to_async(session_cookie)(staff))
    await client.subscribe("ops")
    queue = f"monitor{secrets.token_hex(3)}"
    env = {**os.environ, **server_env,
           "TASKSTREAM_JSON": json.dumps({"OPS_PULSE_INTERVAL": 0.5})}
    monitor = await asyncio.to_thread(start_monitor, env)
    worker = await asyncio.to_thread(start_worker, concurrency=2,
                                     CELERY_TASK_DEFAULT_QUEUE=queue, CELERY_TASK_EVENTS="1")
    try:
        while (await client.recv(timeout=30)).get("event") != "monitor.summary":
            pass  # the monitor is consuming once its summaries arrive
        owner = await sync_to_async(make_user)()
        for _ in range(3):
            await sync_to_async(job_start)(kind="demo.noop", owner=owner, queue=queue)
        for _ in range(150):  # 450 task events in a few seconds
            current_app.send_task("demo.noop", kwargs={"updates": 0}, queue=queue)
        made: list[datetime] = []
        while True:
            frame = await client.recv(timeout=30)
            if frame.get("event") != "monitor.summary":
                continue
            data = frame["data"]
            made.append(datetime.fromisoformat(data["at"]))
            if data["tasks"]["succeeded"] >= 153:
                break
        assert any(worker.name in w["hostname"] for w in data["workers"])
        assert data["runtime_avg"] is not None and data["events"] >= 3 * 153
        # At most one summary per interval (0.5 s), whatever the event rate: the monitor's
        # own times, so a loaded machine delivering them late cannot bunch them up here.
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(made)]
        assert len(gaps) >= 1 and min(gaps) >= 0.45, gaps
    finally:
        await asyncio.to_thread(worker.stop)
        stop_group(monitor)
