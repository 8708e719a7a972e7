"""SIGKILL of the worker in the middle of a job: it still succeeds, once.

The job goes to a queue only the doomed worker consumes. After the kill a replacement
worker starts on that queue, as a supervisor would restart it. RabbitMQ hands the
unacknowledged message back at once (``redelivered``) and the new run takes the job over;
the Redis broker keeps it invisible until its visibility timeout, so the reaper (beat in
``celery_worker``) re-queues the job once its heartbeat is stale. Either way: one run
finishes, one ``job.succeeded`` event, one result.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs import job_start
from taskstream.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(autouse=True)
async def _close_thread_connections():  # type: ignore[no-untyped-def]
    # The async ORM and sync_to_async run in one executor thread whose connection would
    # otherwise outlive the test and block dropping the PostgreSQL test database.
    yield
    await sync_to_async(connections.close_all)()


async def wait_for(job_id: str, ok, timeout: float = 60.0) -> Job:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        job = await Job.objects.aget(pk=job_id)
        if ok(job):
            return job
        assert loop.time() < deadline, f"job is {job.state} at {job.progress_current}"
        await asyncio.sleep(0.05)


async def test_sigkilled_worker_job_still_succeeds_exactly_once(make_user, start_worker,
                                                                session_cookie, connect):
    queue = f"crash{secrets.token_hex(3)}"
    doomed = await sync_to_async(start_worker)(concurrency=1, CELERY_TASK_DEFAULT_QUEUE=queue)
    user = await sync_to_async(make_user)()
    job = await sync_to_async(job_start)(kind="demo.slow", owner=user, queue=queue,
                                         params={"steps": 30, "step_seconds": 0.1})
    since = await sync_to_async(latest_cursor)(job.topic)
    await wait_for(str(job.pk), lambda j: j.state == "running" and j.progress_current >= 3)
    await sync_to_async(doomed.kill)()
    replacement = await sync_to_async(start_worker)(concurrency=1,
                                                    CELERY_TASK_DEFAULT_QUEUE=queue)
    try:
        done = await wait_for(str(job.pk), lambda j: j.state in ("succeeded", "failed"))
    finally:
        await sync_to_async(replacement.stop)()
    assert done.state == "succeeded" and done.result == {"steps": 30}
    assert done.attempt >= 2  # the killed run and the one that finished
    hub = await connect(cookie=await sync_to_async(session_cookie)(user))
    await hub.subscribe(job.topic, since=since)
    events = []
    while not events or events[-1]["event"] != "job.succeeded":
        events.append(await hub.expect("event"))
    await hub.send({"type": "ping"})
    await hub.expect("pong")  # nothing after the one success: no second terminal event
    terminal = [e for e in events if e["event"] in ("job.succeeded", "job.failed",
                                                     "job.cancelled")]
    assert len(terminal) == 1
    assert events[-1]["data"]["progress"]["current"] == 30
