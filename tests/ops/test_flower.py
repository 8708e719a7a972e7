"""Flower keeps working beside taskstream: its API sees our workers and our jobs' tasks
while the ops monitor consumes the same events."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from taskstream.jobs import job_start
from taskstream.testing import free_port, stop_group
from tests.conftest import LOG_DIR, ROOT

pytest.importorskip("flower")
pytestmark = pytest.mark.django_db(transaction=True)


def start(argv: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / log).open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def flower_sees(url: str, task_ids: set[str], worker: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            tasks = get(f"{url}/api/tasks")
            workers = get(f"{url}/api/workers?refresh=1")
            done = {t for t, info in tasks.items() if info.get("state") == "SUCCESS"}
            if task_ids <= done and any(worker in name for name in workers):
                return tasks
        except OSError:
            pass  # Flower still starting
        assert time.monotonic() < deadline, "Flower did not see the worker and the tasks"
        time.sleep(0.3)


async def test_flower_sees_workers_and_tasks_beside_the_monitor(
        server_env, start_worker, make_user, session_cookie, connect):
    staff = await sync_to_async(make_user)(is_staff=True)
    client = await connect(cookie=await sync_to_async(session_cookie)(staff))
    await client.subscribe("ops")
    queue = f"flower{secrets.token_hex(3)}"
    port = free_port()
    env = {**os.environ, **server_env, "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = await asyncio.to_thread(
        start, [sys.executable, "-m", "celery", "-A", "example", "flower", f"--port={port}",
                "--address=127.0.0.1"], env, f"flower-{port}.log")
    monitor = await asyncio.to_thread(
        start, [sys.executable, "-m", "taskstream.ops.monitor"], env, f"monitor-{port}.log")
    worker = await asyncio.to_thread(start_worker, concurrency=1,
                                     CELERY_TASK_DEFAULT_QUEUE=queue, CELERY_TASK_EVENTS="1")
    try:
        owner = await sync_to_async(make_user)()
        jobs = [await sync_to_async(job_start)(kind="demo.noop", owner=owner, queue=queue)
                for _ in range(2)]
        task_ids = {j.celery_task_id for j in jobs}  # one run each: the id stays
        tasks = await asyncio.to_thread(flower_sees, f"http://127.0.0.1:{port}", task_ids,
                                        worker.name)
        assert {tasks[t]["name"] for t in task_ids} == {"demo.noop"}
        # The monitor got the same events: its summary counts the successes too.
        while True:
            frame = await client.recv(timeout=30)
            if (frame.get("event") == "monitor.summary"
                    and frame["data"]["tasks"]["succeeded"] >= 2):
                break
    finally:
        await asyncio.to_thread(worker.stop)
        stop_group(monitor)
        stop_group(flower)
