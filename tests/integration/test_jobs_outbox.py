"""A job that finishes while the hub's Redis is down still reaches the page, once.

A real worker, server and relay on a Redis of the test's own (kept across a restart, as a
production Redis with persistence is). The job ends while that Redis is stopped: its
``job.succeeded`` is committed with the job's state in the outbox, and reaches the
subscribed client once Redis is back, without a reload, exactly once.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import override_settings

from taskstream.jobs import job_start
from taskstream.jobs.models import Job
from taskstream.testing import HubClient
from tests.integration.test_outbox_delivery import (  # noqa: F401  (fixtures)
    kept_redis,
    next_event,
    start_relay,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_thread_connections():  # type: ignore[no-untyped-def]
    yield
    await sync_to_async(connections.close_all)()


async def wait_state(job_id: Any, states: set[str], timeout: float = 60.0) -> Job:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        job = await Job.objects.aget(pk=job_id)
        if job.state in states:
            return job
        assert loop.time() < deadline, f"job still {job.state}"
        await asyncio.sleep(0.05)


async def test_a_job_that_finishes_while_redis_is_down_reaches_the_page_once(
        start_server: Any, start_worker: Any, start_relay: Any,  # noqa: F811
        kept_redis: Any, make_user: Any, session_cookie: Any) -> None:  # noqa: F811
    queue = f"outbox{secrets.token_hex(3)}"
    server = start_server(REDIS_URL=kept_redis.url)
    start_relay(REDIS_URL=kept_redis.url)
    worker = await sync_to_async(start_worker)(concurrency=1, REDIS_URL=kept_redis.url,
                                               CELERY_TASK_DEFAULT_QUEUE=queue)
    user = await sync_to_async(make_user)()
    client = await HubClient.connect(server.ws_url,
                                     cookie=await sync_to_async(session_cookie)(user))
    try:
        with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": kept_redis.url}):
            job = await sync_to_async(job_start)(kind="demo.slow", owner=user, queue=queue,
                                                 params={"steps": 15, "step_seconds": 0.1})
        await client.subscribe(job.topic)
        await wait_state(job.pk, {"running"})
        await sync_to_async(kept_redis.stop)()
        done = await wait_state(job.pk, {"succeeded", "failed", "cancelled"})
        assert done.state == "succeeded"
        await sync_to_async(kept_redis.start)()

        seen = []
        while not seen or seen[-1]["event"] != "job.succeeded":
            seen.append(await next_event(client))
        assert seen[-1]["data"]["state"] == "succeeded"
        # Exactly once: nothing after it but the answer to a ping.
        await client.send({"type": "ping"})
        assert (await client.recv(10))["type"] == "pong"
        assert [e["event"] for e in seen].count("job.succeeded") == 1
    finally:
        await client.close()
        await sync_to_async(worker.stop)()
