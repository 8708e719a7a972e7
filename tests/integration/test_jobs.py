"""Jobs end to end: a real Celery worker, a real ASGI server, real Redis and broker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from taskstream.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

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
    assert progress == sorted(progress) and progress[-1] == 5  # in order, last value kept
    final = events[-1]["data"]
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
