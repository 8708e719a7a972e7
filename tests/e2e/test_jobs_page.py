"""The "My jobs" page in Chromium, with a real Celery worker behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from playwright.async_api import Locator, Page, expect

from taskstream.jobs.models import Job
from taskstream.testing import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]



@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _close_thread_connections() -> AsyncIterator[None]:
    # The async ORM's executor thread keeps a connection that would block dropping the
    # PostgreSQL test database at the end of the run.
    yield
    await sync_to_async(connections.close_all)()


# Reconnecting waits out a backoff of up to 10 s, plus the server's start-up.
RECONNECT_TIMEOUT = 30_000


async def open_jobs_page(make_user: Any, login: Any, context: Any, page: Page,
                         site: ServerProcess) -> None:
    user = await sync_to_async(make_user)()
    await login(context, user, site)
    await page.goto(f"{site.http_url}/jobs/")
    await expect(page.locator("#jobs[data-subscribed]")).to_have_count(1)
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")


async def start_slow_job(page: Page, steps: int, step_seconds: float) -> Locator:
    before = await page.locator("li.job").count()
    await page.select_option("select[name=kind]", "demo.slow")
    await page.fill("input[name=steps]", str(steps))
    await page.fill("input[name=step_seconds]", str(step_seconds))
    await page.click("#start-button")
    await expect(page.locator("li.job")).to_have_count(before + 1)
    return page.locator("li.job").first  # the newest job is on top


async def test_start_watch_to_100_percent_and_cancel_another(make_user, login, context, page,
                                                             live_site):
    await open_jobs_page(make_user, login, context, page, live_site)
    quick = await start_slow_job(page, steps=5, step_seconds=0.2)
    job_id = await quick.get_attribute("data-job-id")
    # Progress arrives live before the end (rendered from events, not a reload).
    await expect(quick.locator(".job-message")).to_have_text("step 5 of 5", timeout=20_000)
    await expect(quick).to_have_attribute("data-state", "succeeded")
    await expect(quick.locator(".bar")).to_have_attribute("aria-valuenow", "100")
    await expect(quick.locator(".job-result")).to_have_text('result: {"steps":5}')

    slow = await start_slow_job(page, steps=200, step_seconds=0.1)
    await expect(slow).to_have_attribute("data-state", "running", timeout=20_000)
    await slow.locator('[data-action="cancel"]').click()
    await expect(slow).to_have_attribute("data-state", "cancelled", timeout=20_000)
    await expect(slow.locator('[data-action="retry"]')).to_be_visible()
    await expect(slow.locator('[data-action="cancel"]')).to_be_hidden()
    # The finished one is untouched, and nothing was rendered twice.
    await expect(page.locator(f'li.job[data-job-id="{job_id}"]')).to_have_attribute(
        "data-state", "succeeded")
    await expect(page.locator("li.job")).to_have_count(2)


async def test_page_recovers_after_server_restart(start_server, make_user, login, context,
                                                  page):
    server = start_server()
    try:
        await open_jobs_page(make_user, login, context, page, server)
        job = await start_slow_job(page, steps=30, step_seconds=0.1)
        await expect(job).to_have_attribute("data-state", "running", timeout=20_000)
        await asyncio.to_thread(server.stop)
        await expect(page.locator("#hub-state")).to_have_attribute("data-state", "reconnecting")
        # The job runs on and finishes while the page has no connection at all.
        job_id = await job.get_attribute("data-job-id")
        while (await Job.objects.aget(pk=job_id)).state != "succeeded":  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.to_thread(server.start)
        await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open",
                                                                   timeout=RECONNECT_TIMEOUT)
        await expect(job).to_have_attribute("data-state", "succeeded", timeout=RECONNECT_TIMEOUT)
        await expect(job.locator(".bar")).to_have_attribute("aria-valuenow", "100")
        await expect(job.locator(".job-message")).to_have_text("step 30 of 30")
    finally:
        await asyncio.to_thread(server.stop)
