"""The "My jobs" page in Chromium, with a real Celery worker behind it."""

from __future__ import annotations

import asyncio
import re
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
    await page.select_option("#start select[name=kind]", "demo.slow")
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
    await expect(quick.locator(".job-result")).to_have_text("Result: steps: 5")
    # Screen readers hear each job's state change, not every progress tick of the list.
    await expect(quick.locator(".job-state")).to_have_attribute("aria-live", "polite")
    assert await page.locator("#jobs").get_attribute("aria-live") is None
    await expect(quick.locator(".bar")).to_have_accessible_name("Slow job with steps")

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


async def test_filters_paging_and_a_job_page_with_its_attempts(make_user, login, context, page,
                                                                live_site):
    user = await sync_to_async(make_user)()
    # 22 finished jobs: more than one page of 20 (rows as the services leave them).
    for n in range(22):
        await Job.objects.acreate(owner=user, kind="demo.slow" if n % 2 else "demo.noop",
                                  state="succeeded", params={"n": n})
    await login(context, user)
    await page.goto(f"{live_site.http_url}/jobs/")
    await expect(page.locator("li.job")).to_have_count(20)
    await expect(page.locator("#count")).to_have_text("22 jobs · page 1 of 2")
    await page.get_by_role("link", name="Older →").click()
    await expect(page.locator("li.job")).to_have_count(2)
    await page.get_by_role("link", name="← Newer").click()
    await expect(page.locator("li.job")).to_have_count(20)

    # Filter by kind with the keyboard only: type to pick the option, Tab, Enter.
    await page.get_by_label("Kind").focus()
    await page.keyboard.type("No-op")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"kind=demo\.noop"))
    await expect(page.locator("li.job")).to_have_count(11)
    await expect(page.locator("li.job .job-kind").first).to_have_text("No-op with ten updates")

    # A live job: started here, followed to its own page, which shows every attempt.
    await page.goto(f"{live_site.http_url}/jobs/")
    await expect(page.locator("#jobs[data-subscribed]")).to_have_count(1)
    await page.select_option("#start select[name=kind]", "demo.flaky")
    await page.fill("input[name=fail_times]", "1")
    await page.click("#start-button")
    row = page.locator("li.job").first
    await expect(row.locator(".job-kind")).to_have_text("Fails twice, then succeeds")
    await expect(row).to_have_attribute("data-state", "succeeded", timeout=30_000)
    await expect(row.locator("dt", has_text="Duration")).to_have_count(1)
    await row.locator(".job-kind").click()
    await expect(page.locator("#job-label")).to_have_text("Fails twice, then succeeds")
    await expect(page.locator("#job")).to_have_attribute("data-state", "succeeded")
    attempts = page.locator("#attempts > li")
    await expect(attempts).to_have_count(2)
    await expect(attempts.first).to_contain_text("DemoFlakyError: planned failure 1 of 1")
    await expect(attempts.nth(1)).to_have_attribute("data-outcome", "succeeded")
    await expect(page.locator(".params")).to_contain_text('"fail_times": 1')
    await expect(page.locator("#job-result")).to_have_text("Result: attempts: 2")


async def test_a_job_page_follows_the_job_live(make_user, login, context, page, live_site):
    await open_jobs_page(make_user, login, context, page, live_site)
    job = await start_slow_job(page, steps=40, step_seconds=0.1)
    job_id = await job.get_attribute("data-job-id")
    await page.goto(f"{live_site.http_url}/jobs/{job_id}/")
    await expect(page.locator("#job[data-subscribed]")).to_have_count(1)
    await expect(page.locator("#job")).to_have_attribute("data-state", "running", timeout=20_000)
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#job")).to_have_attribute("data-state", "cancelled", timeout=20_000)
    await expect(page.locator("#job-state")).to_have_text("cancelled")
    await expect(page.locator("#attempts > li").first).to_have_attribute("data-outcome",
                                                                         "cancelled")
    await page.get_by_role("button", name="Retry").click()
    await expect(page.locator("#job")).to_have_attribute("data-state", "running", timeout=20_000)
