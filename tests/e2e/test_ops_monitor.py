"""The overview's events-monitor section in Chromium: live from real ``monitor.summary``
frames (a real monitor, a real worker), an alert shown when the worker is killed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from playwright.async_api import expect

from taskstream.jobs import job_start
from tests.conftest import LOG_DIR
from tests.e2e.test_site import PHONE, audit
from tests.ops.monitoring import MonitorProcess, heartbeat_worker

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

OFF = {"OPS_ALERT_QUEUE_WAIT": 0, "OPS_ALERT_FAILURE_RATE": 0, "OPS_ALERT_MISSED_BEAT": 0}


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


async def test_monitor_section_is_live_and_shows_a_lost_worker(
        make_user, login, context, page, live_site, server_env):
    queue = f"e2emon{secrets.token_hex(3)}"
    monitor = MonitorProcess(server_env, **OFF, OPS_ALERT_WORKER_GONE=1).start()
    worker = heartbeat_worker(server_env, queue=queue)
    await asyncio.to_thread(worker.start)
    try:
        staff = await sync_to_async(make_user)(is_staff=True)
        await login(context, staff, live_site)
        await page.goto(f"{live_site.http_url}/ops/")
        await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
        await expect(page.locator('[data-monitor="workers_up"]')).to_have_text(
            "1", timeout=30_000)
        for _ in range(2):
            await sync_to_async(job_start)(kind="demo.noop", owner=staff, queue=queue)
        # No reload: each monitor.summary on `ops` repaints the section.
        await expect(page.locator('[data-monitor="succeeded"]')).to_have_text(
            "2", timeout=30_000)
        await expect(page.locator('[data-monitor="failure_rate"]')).to_have_text("0 %")
        await expect(page.locator("#ops-monitor-chart rect.ok")).to_have_count(1)
        await expect(page.locator("#ops-alerts")).to_have_text("No open alerts.")

        await asyncio.to_thread(worker.kill)
        gone = page.locator("#ops-alerts .alert-open")
        await expect(gone).to_contain_text(f"worker {worker.name}@", timeout=30_000)
        await expect(page.locator('[data-monitor="workers_up"]')).to_have_text("0")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for width, name in ((1100, "ops-monitor.png"), (PHONE["width"], "ops-monitor-mobile.png")):
            await page.set_viewport_size({"width": width, "height": 900})
            assert not await audit(page)
            await page.locator("#ops-monitor").screenshot(path=str(LOG_DIR / name))
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        await asyncio.to_thread(worker.kill)
        await asyncio.to_thread(monitor.stop)
