"""The operations overview in Chromium: its numbers and chart follow a running job live."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from playwright.async_api import expect

from taskstream.jobs import job_start

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


async def test_overview_updates_live_while_a_job_runs(make_user, login, context, page,
                                                      live_site):
    staff = await sync_to_async(make_user)(is_staff=True)
    await login(context, staff, live_site)
    await page.goto(f"{live_site.http_url}/ops/")
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
    succeeded = page.locator('[data-stat="succeeded"]')
    before = int(await succeeded.inner_text())
    bars = page.locator("#ops-chart rect.ok")
    bars_before = await bars.count()

    await sync_to_async(job_start)(kind="demo.slow", owner=staff,
                                   params={"steps": 4, "step_seconds": 0.5})
    # No reload: the page hears jobs.changed on `ops` and refetches.
    await expect(page.locator('[data-stat="running"]')).to_have_text("1", timeout=15_000)
    await expect(succeeded).to_have_text(str(before + 1), timeout=15_000)
    await expect(page.locator('[data-stat="running"]')).to_have_text("0")
    assert await bars.count() >= max(bars_before, 1)
    await expect(page.locator('[data-stat="failure_rate"]')).to_have_text("0 %")


async def test_non_staff_gets_403_and_forbidden_on_ops(make_user, login, context, page,
                                                       live_site):
    member = await sync_to_async(make_user)()
    await login(context, member, live_site)
    response = await page.goto(f"{live_site.http_url}/ops/")
    assert response is not None and response.status == 403
