"""Every demo page works under its Content-Security-Policy in Chromium: nothing blocked."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from playwright.async_api import Page, expect

from taskstream.testing import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

# Every violation, reported by the page itself (also for blocked inline code, which the
# console would only mention in passing).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} `
                    + `at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


def _fixtures(make_user: Any) -> tuple[Any, str, str]:
    from taskstream.jobs.services import job_start
    from taskstream.rooms.services import room_create

    user = make_user(is_staff=True, is_superuser=True)
    slug = f"csp{secrets.token_hex(3)}"
    room_create(slug=slug, name="CSP", creator=user)
    job = job_start(kind="demo.slow", owner=user, params={})
    return user, slug, str(job.pk)


async def test_every_demo_page_runs_under_the_policy(make_user: Any, login: Any, context: Any,
                                                     page: Page, live_site: ServerProcess,
                                                     ) -> None:
    user, slug, job_id = await sync_to_async(_fixtures)(make_user)
    await context.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    pages = ["/login/", "/signup/"]
    signed_in = ["/", "/live/", "/jobs/", f"/jobs/{job_id}/", "/pipelines/", "/schedules/",
                 "/ops/", "/ops/failures/", "/ops/stuck/", "/ops/audit/", "/rooms/",
                 f"/rooms/{slug}/", "/admin/", "/api/docs"]
    for path in pages:
        response = await page.goto(live_site.http_url + path)
        assert response is not None and response.status == 200, path
        assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
        assert await page.evaluate("window.__csp") == [], path
    await login(context, user)
    for path in signed_in:
        response = await page.goto(live_site.http_url + path)
        assert response is not None and response.status == 200, path
        assert "content-security-policy" in response.headers, path
        assert await page.evaluate("window.__csp") == [], path
    # The live page's inline module ran and its hub socket opened (connect-src 'self').
    await page.goto(live_site.http_url + "/live/")
    await expect(page.locator("#state")).to_have_attribute("data-state", "open")
    assert [line for line in console if "Content Security Policy" in line] == []
