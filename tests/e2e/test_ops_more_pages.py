"""The workers, queues, jobs and periodic pages in Chromium: live over ``ops``, an axe audit
clean at desktop width and at 375 px, nothing wider than a phone, and a screenshot of each.

Screenshots go to a temporary directory; with ``OPS_SCREENSHOTS=docs`` they are written
to docs/ops-<page>.png and docs/ops-<page>-mobile.png (the images docs/ops.md shows).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from celery import current_app
from django.db import connections
from django.utils import timezone
from playwright.async_api import Page, expect

from taskstream.jobs import job_start
from taskstream.jobs.models import Job
from taskstream.ops.models import AuditRecord
from taskstream.testing import stop_group
from tests.conftest import LOG_DIR, ROOT, WorkerProcess
from tests.e2e.test_site import PHONE, audit
from tests.ops.test_monitor import start_monitor

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

DESKTOP = {"width": 1280, "height": 900}


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return ROOT / "docs" if os.environ.get("OPS_SCREENSHOTS") == "docs" else tmp_path


async def check_and_shoot(page: Page, name: str, shots: Path) -> None:
    """axe at both widths, no sideways scrolling at 375 px, a screenshot at each width."""
    problems = {}
    for width, suffix in ((DESKTOP["width"], ""), (PHONE["width"], "-mobile")):
        await page.set_viewport_size({"width": width, "height": DESKTOP["height"]})
        if found := await audit(page):
            problems[width] = found
        if width == PHONE["width"]:
            wide = await page.evaluate("document.documentElement.scrollWidth")
            assert wide <= PHONE["width"], f"{name} is {wide} px wide at 375 px"
        await page.screenshot(path=str(shots / f"ops-{name}{suffix}.png"), full_page=True)
    assert not problems, f"{name}: {problems}"


def _queue_with_messages(owner: Any, queue: str, count: int) -> list[Job]:
    return [job_start(kind="demo.noop", owner=owner, queue=queue) for _ in range(count)]


def _delete_queue(queue: str) -> None:
    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_delete(queue)


async def test_queues_page_is_live_and_purges_after_confirmation(make_user, login, context,
                                                                 page, live_site, shots):
    staff = await sync_to_async(make_user)(username="ops-admin", is_staff=True)
    owner = await sync_to_async(make_user)(username="ann")
    queue = f"reports{secrets.token_hex(3)}"
    try:
        await sync_to_async(_queue_with_messages)(owner, queue, 2)
        await login(context, staff, live_site)
        await page.set_viewport_size(DESKTOP)
        await page.goto(f"{live_site.http_url}/ops/queues/")
        await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
        row = page.locator(f'tr[data-queue="{queue}"]')
        await expect(row.locator('[data-field="depth"]')).to_have_text("2")
        # Live: a third job waiting in the queue moves the number without a reload.
        await sync_to_async(_queue_with_messages)(owner, queue, 1)
        await expect(row.locator('[data-field="depth"]')).to_have_text("3", timeout=15_000)
        await expect(row.locator('[data-field="age"]')).to_contain_text(" s")
        await check_and_shoot(page, "queues", shots)

        await page.set_viewport_size(DESKTOP)
        await row.get_by_role("link", name=f"Purge queue {queue}…").click()
        await expect(page.get_by_role("heading", name=f"Purge queue {queue}?")).to_be_visible()
        await page.get_by_role("button", name=f"Yes, purge {queue}").click()
        await expect(page.locator(".message.success")).to_contain_text(
            "3 message(s) deleted, 3 waiting job(s) cancelled")
        await expect(row.locator('[data-field="depth"]')).to_have_count(0)  # no longer listed
        record = await sync_to_async(AuditRecord.objects.get)(action="queue.purge",
                                                              target_id=queue)
        assert record.actor_name == "ops-admin" and record.outcome == "ok"
    finally:
        await sync_to_async(_delete_queue)(queue)


def _some_jobs(owner: Any, other: Any) -> None:
    now = timezone.now()
    for i, (kind, state, who) in enumerate([
            ("demo.slow", "succeeded", owner), ("demo.fail", "failed", other),
            ("demo.slow", "running", owner), ("demo.noop", "cancelled", other),
            ("demo.fail", "failed", owner)]):
        job = Job.objects.create(kind=kind, owner=who, state=state, attempt=1,
                                 error_type="ValueError" if state == "failed" else "",
                                 error_message="bad row 7" if state == "failed" else "",
                                 finished_at=now if state != "running" else None)
        Job.objects.filter(pk=job.pk).update(created_at=now - timedelta(minutes=5 * i))


async def test_jobs_page_filters_and_shows_new_jobs_live(make_user, login, context, page,
                                                        live_site, shots):
    staff = await sync_to_async(make_user)(username="ops-admin", is_staff=True)
    ann = await sync_to_async(make_user)(username="ann")
    bob = await sync_to_async(make_user)(username="bob")
    await sync_to_async(_some_jobs)(ann, bob)
    await login(context, staff, live_site)
    await page.set_viewport_size(DESKTOP)
    await page.goto(f"{live_site.http_url}/ops/jobs/")
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
    rows = page.locator("#ops-job-rows tbody tr[data-job-id]")
    await expect(rows).to_have_count(5)
    await page.get_by_label("State").select_option("failed")
    await page.get_by_label("Owner").fill("bob")
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("demo.fail")

    await page.goto(f"{live_site.http_url}/ops/jobs/?owner=ann")
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
    await expect(rows).to_have_count(3)
    # Live: a job ann starts now appears at the top (its queue has no worker: it waits).
    queue = f"idle{secrets.token_hex(3)}"
    try:
        job = await sync_to_async(job_start)(kind="demo.noop", owner=ann, queue=queue)
        await expect(rows).to_have_count(4, timeout=15_000)
        await expect(rows.first).to_have_attribute("data-job-id", str(job.pk))
    finally:
        await sync_to_async(_delete_queue)(queue)
    await page.goto(f"{live_site.http_url}/ops/jobs/")
    await expect(rows).to_have_count(6)
    await check_and_shoot(page, "jobs", shots)


def _schedules() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from taskstream.periodic.models import MissedRun, PeriodicRun

    now = timezone.now()
    every = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="send-digest", task="demo.noop", interval=every,
                                last_run_at=now - timedelta(seconds=100), total_run_count=3)
    PeriodicTask.objects.create(name="nightly-cleanup", task="demo.slow", interval=hourly,
                                last_run_at=now - timedelta(hours=3), total_run_count=12)
    for i, outcome in enumerate(["succeeded", "failed", "succeeded"]):
        start = now - timedelta(seconds=100 + 300 * i)
        PeriodicRun.objects.create(
            name="send-digest", task="demo.noop", task_id=str(uuid.uuid4()),
            started_at=start, finished_at=start + timedelta(seconds=0.4), duration=0.4,
            outcome=outcome, hostname="celery@worker-1",
            error="ConnectionError: smtp.example.com refused" if outcome == "failed" else "")
    MissedRun.objects.create(name="nightly-cleanup", due_at=now - timedelta(hours=2),
                             last_run_at=now - timedelta(hours=3))


async def test_periodic_page_shows_runs_and_a_missed_run_live(make_user, login, context,
                                                             page, live_site, shots):
    from taskstream.hub import publish

    staff = await sync_to_async(make_user)(is_staff=True)
    await sync_to_async(_schedules)()
    await login(context, staff, live_site)
    await page.set_viewport_size(DESKTOP)
    await page.goto(f"{live_site.http_url}/ops/periodic/")
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
    digest = page.locator('[data-schedule="send-digest"]')
    await expect(digest.locator('[data-field="next"] time')).to_have_count(1)
    await expect(digest).to_contain_text("ConnectionError: smtp.example.com refused")
    await expect(page.locator("li.missed")).to_have_count(1)

    def miss() -> None:
        from taskstream.periodic.models import MissedRun

        MissedRun.objects.create(name="send-digest", due_at=timezone.now())
        publish("ops", "schedule.missed", {"name": "send-digest"})

    await sync_to_async(miss)()
    await expect(page.locator("li.missed")).to_have_count(2, timeout=15_000)
    await check_and_shoot(page, "periodic", shots)


async def test_workers_page_shows_heartbeats_live_and_a_killed_worker_offline(
        server_env, make_user, login, context, page, live_site, shots):
    staff = await sync_to_async(make_user)(is_staff=True)
    name = f"w{secrets.token_hex(3)}"
    env = {**os.environ, **server_env, "TASKSTREAM_JSON": json.dumps({"OPS_PULSE_INTERVAL": 0.5})}
    monitor = await asyncio.to_thread(start_monitor, env)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess({**server_env, "CELERY_TASK_DEFAULT_QUEUE": name,
                            "CELERY_TASK_EVENTS": "1"}, name=name, concurrency=2,
                           log=LOG_DIR / f"{name}.log")
    worker.argv.remove("--without-heartbeat")  # the page shows the heartbeats
    try:
        await asyncio.to_thread(worker.start)
        await login(context, staff, live_site)
        await page.set_viewport_size(DESKTOP)
        # The worker answers inspect once it is ready; the page lists what answered.
        row = page.locator(f'tr[data-hostname^="{name}@"]')
        for _ in range(10):
            await page.goto(f"{live_site.http_url}/ops/workers/")
            if await row.count():
                break
            await asyncio.sleep(1)  # the inspect cache holds answers for 3 s
        await expect(row).to_have_count(1)
        await expect(row.locator("td").nth(3)).to_have_text("2")  # concurrency
        # Live: the monitor's summaries fill in the heartbeat.
        await expect(row.locator('[data-field="heartbeat"]')).to_contain_text(" ago",
                                                                             timeout=30_000)
        await expect(row.locator('[data-field="status"]')).to_have_text("online")
        # A job running on it is listed under its active tasks, linked to the job's page.
        job = await sync_to_async(job_start)(kind="demo.slow", owner=staff, queue=name,
                                             params={"steps": 60, "step_seconds": 0.5})
        link = row.locator(f'[data-field="active"] a[href="/jobs/{job.pk}/"]')
        for _ in range(30):  # until an inspect (kept 3 s per process) sees it running
            await page.reload()
            if await link.count():
                break
            await asyncio.sleep(1)
        await expect(link).to_contain_text("demo.slow")
        await expect(row.locator('[data-field="heartbeat"]')).to_contain_text(" ago",
                                                                             timeout=30_000)
        await check_and_shoot(page, "workers", shots)
        await page.set_viewport_size(DESKTOP)
        await asyncio.to_thread(worker.kill)  # no goodbye: its heartbeats just stop
        await expect(row.locator('[data-field="status"]')).to_have_text("offline",
                                                                       timeout=30_000)
    finally:
        await asyncio.to_thread(worker.stop)
        stop_group(monitor)
