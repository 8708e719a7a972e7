"""Jobs end to end: a real Celery worker, a real ASGI server, real Redis and broker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client

from taskstream.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(autouse=True)
async def _close_thread_connections():  # type: ignore[no-untyped-def]
    # The async ORM and sync_to_async run in one executor thread whose connection would
    # otherwise outlive the test and block dropping the PostgreSQL test database.
    yield
    await sync_to_async(connections.close_all)()

TERMINAL = {"job.succeeded", "job.failed", "job.cancelled"}


def api(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def start(client: Client, kind: str, **body: Any) -> dict[str, Any]:
    response = client.post("/api/jobs/", json.dumps({"kind": kind, **body}),
                           content_type="application/json")
    assert response.status_code == 202, response.content
    data: dict[str, Any] = response.json()
    return data


async def until_terminal(hub: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Events of one subscribed topic up to and including the terminal one."""
    got: list[dict[str, Any]] = []
    while not got or got[-1]["event"] not in TERMINAL:
        got.append(await hub.expect("event", timeout))
    return got


async def wait_state(job_id: str, states: set[str], timeout: float = 30.0) -> Job:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await Job.objects.aget(pk=job_id)
        if job.state in states:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job still {job.state}, wanted {states}")
        await asyncio.sleep(0.05)


async def test_progress_arrives_in_order_then_one_success(make_user, session_cookie, connect):
    user = await sync_to_async(make_user)()
    client = await sync_to_async(api)(user)
    job = await sync_to_async(start)(client, "demo.slow",
                                     params={"steps": 5, "step_seconds": 0.15})
    hub = await connect(cookie=await sync_to_async(session_cookie)(user))
    await hub.subscribe(job["topic"], since=job["cursor"])
    events = await until_terminal(hub)
    names = [e["event"] for e in events]
    assert names[-1] == "job.succeeded" and names.count("job.succeeded") == 1
    assert "job.started" in names
    progress = [e["data"]["progress"]["current"] for e in events if e["event"] == "job.progress"]
    assert progress and progress == sorted(progress)  # in order (coalesced to a bounded rate)
    final = events[-1]["data"]
    assert final["progress"]["current"] == 5  # the last value is always delivered
    assert final["state"] == "succeeded" and final["result"] == {"steps": 5}
    assert final["progress"]["percent"] == 100.0 and final["attempt"] == 1


async def test_cursor_from_start_replays_the_whole_story(make_user, session_cookie, connect):
    user = await sync_to_async(make_user)()
    client = await sync_to_async(api)(user)
    job = await sync_to_async(start)(client, "demo.slow", params={"steps": 2, "step_seconds": 0})
    await wait_state(job["id"], {"succeeded"})
    hub = await connect(cookie=await sync_to_async(session_cookie)(user))
    await hub.subscribe(job["topic"], since=job["cursor"])
    names = [e["event"] for e in await until_terminal(hub)]
    assert names[:2] == ["job.created", "job.started"] and names[-1] == "job.succeeded"
    detail = (await sync_to_async(client.get)(f"/api/jobs/{job['id']}/")).json()
    again = await connect(cookie=await sync_to_async(session_cookie)(user))
    subscribed = await again.subscribe(job["topic"], since=detail["cursor"])
    assert subscribed["cursor"] == detail["cursor"]  # nothing after the snapshot to replay


def post(client: Client, path: str) -> Any:
    return client.post(path, "{}", content_type="application/json")


async def test_cancel_queued_never_runs_and_cancel_running_stops(make_user):
    user = await sync_to_async(make_user)()
    client = await sync_to_async(api)(user)
    slow = {"params": {"steps": 200, "step_seconds": 0.05}}
    # Two long jobs take both pool processes, so the third waits in the queue.
    busy = [await sync_to_async(start)(client, "demo.slow", **slow) for _ in range(2)]
    for job in busy:
        await wait_state(job["id"], {"running"})
    queued = await sync_to_async(start)(client, "demo.slow", **slow)
    response = await sync_to_async(post)(client, f"/api/jobs/{queued['id']}/cancel/")
    assert response.json()["state"] == "cancelled"
    for job in busy:
        response = await sync_to_async(post)(client, f"/api/jobs/{job['id']}/cancel/")
        assert response.json()["cancel_requested"] is True
    for job in busy:
        stopped = await wait_state(job["id"], {"cancelled", "succeeded"})
        assert stopped.state == "cancelled" and stopped.progress_current < 200
    # A job sent after the cancelled one has run: the cancelled one's message is consumed.
    after = await sync_to_async(start)(client, "demo.slow", params={"steps": 1, "step_seconds": 0})
    await wait_state(after["id"], {"succeeded"})
    never = await Job.objects.aget(pk=queued["id"])
    assert never.state == "cancelled" and never.attempt == 0 and never.started_at is None


async def test_celery_retries_show_as_retrying_then_success(make_user, session_cookie,
                                                            connect):
    user = await sync_to_async(make_user)()
    client = await sync_to_async(api)(user)
    job = await sync_to_async(start)(client, "demo.flaky", params={"fail_times": 2})
    hub = await connect(cookie=await sync_to_async(session_cookie)(user))
    await hub.subscribe(job["topic"], since=job["cursor"])
    events = await until_terminal(hub)
    retrying = [e["data"] for e in events if e["event"] == "job.retrying"]
    assert len(retrying) == 2
    assert retrying[0]["state"] == "retrying" and retrying[0]["eta"]
    assert retrying[0]["error"] == {"type": "DemoFlakyError",
                                    "message": "planned failure 1 of 2"}
    assert events[-1]["event"] == "job.succeeded"
    assert events[-1]["data"]["result"] == {"attempts": 3}
    assert events[-1]["data"]["error"] is None


async def test_failed_job_is_retried_by_its_owner(make_user, session_cookie, connect):
    user = await sync_to_async(make_user)()
    client = await sync_to_async(api)(user)
    # Four planned failures outlast max_retries=3: the job fails for good.
    job = await sync_to_async(start)(client, "demo.flaky", params={"fail_times": 4})
    failed = await wait_state(job["id"], {"failed", "succeeded"})
    assert failed.state == "failed" and failed.attempt == 4
    assert failed.error_type == "DemoFlakyError"
    hub = await connect(cookie=await sync_to_async(session_cookie)(user))
    detail = (await sync_to_async(client.get)(f"/api/jobs/{job['id']}/")).json()
    await hub.subscribe(job["topic"], since=detail["cursor"])
    response = await sync_to_async(post)(client, f"/api/jobs/{job['id']}/retry/")
    assert response.status_code == 202
    events = await until_terminal(hub)
    assert events[0]["event"] == "job.retrying" and events[0]["data"]["state"] == "queued"
    assert events[-1]["event"] == "job.succeeded"
    assert events[-1]["data"]["result"] == {"attempts": 5}


async def test_someone_elses_job_topic_is_forbidden(make_user, session_cookie, connect):
    owner, stranger = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    staff = await sync_to_async(make_user)(is_staff=True)
    client = await sync_to_async(api)(owner)
    job = await sync_to_async(start)(client, "demo.slow", params={"steps": 1, "step_seconds": 0})
    theirs = await connect(cookie=await sync_to_async(session_cookie)(stranger))
    await theirs.send({"type": "subscribe", "topic": job["topic"], "id": 1})
    error = await theirs.expect("error")
    assert error["code"] == "forbidden" and error["id"] == 1
    anonymous = await connect()
    await anonymous.send({"type": "subscribe", "topic": job["topic"]})
    assert (await anonymous.expect("error"))["code"] == "forbidden"
    watcher = await connect(cookie=await sync_to_async(session_cookie)(staff))
    await watcher.subscribe(job["topic"], since=job["cursor"])  # staff may watch any job
    assert (await until_terminal(watcher))[-1]["event"] == "job.succeeded"


async def test_owner_topic_gets_every_job_event(make_user, session_cookie, connect):
    user = await sync_to_async(make_user)()
    hub = await connect(cookie=await sync_to_async(session_cookie)(user))
    await hub.subscribe(f"user:{user.pk}")
    client = await sync_to_async(api)(user)
    job = await sync_to_async(start)(client, "demo.slow", params={"steps": 2, "step_seconds": 0})
    events = await until_terminal(hub)
    assert events[0]["event"] == "job.created" and events[-1]["event"] == "job.succeeded"
    assert {e["data"]["id"] for e in events} == {job["id"]}


async def test_cancel_terminates_a_task_that_opted_in(make_user):
    from taskstream.jobs import job_cancel, job_start

    user = await sync_to_async(make_user)()
    job = await sync_to_async(job_start)(kind="demo.blocking", owner=user,
                                         params={"seconds": 60})
    await wait_state(str(job.pk), {"running"})
    cancelled = await sync_to_async(job_cancel)(job=job, actor=user)
    assert cancelled.state == "cancelled"  # at once: no checkpoint to wait for
    # The worker's pool replaced the terminated process: the next job runs.
    client = await sync_to_async(api)(user)
    after = await sync_to_async(start)(client, "demo.slow", params={"steps": 1, "step_seconds": 0})
    await wait_state(after["id"], {"succeeded"})
    assert (await Job.objects.aget(pk=job.pk)).state == "cancelled"
