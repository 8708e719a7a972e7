"""The demo site as a new user meets it: every page passes an axe-core audit, a 375 px
wide screen has a menu button, and the site works from the keyboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from playwright.async_api import Page, expect

from taskstream.jobs import job_start
from taskstream.notifications.services import notification_create
from taskstream.pipelines.services import pipeline_start, upload_create
from tests.pipelines.cleanup import remove_pipeline_files  # noqa: F401
from tests.pipelines.data import make_csv

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

AXE = "/static/vendor/axe-core/axe.min.js"  # vendored (example/static/vendor/README.md)
PHONE = {"width": 375, "height": 740}


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


# Swagger UI's own markup puts a button inside its operation summaries' button; that is
# theirs to fix (it does not trap keyboard users: each control still takes focus).
THIRD_PARTY_RULES = {"/api/docs": ["nested-interactive"]}


async def audit(page: Page, skip: list[str] | None = None) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(url=AXE)  # same origin: the site's CSP allows it
    results = await page.evaluate("""async (skip) => {
      const rules = Object.fromEntries(skip.map(id => [id, {enabled: false}]));
      const r = await axe.run(document, {resultTypes: ["violations"], rules});
      return r.violations.filter(v => ["serious", "critical"].includes(v.impact)).map(v =>
        `${v.id} (${v.impact}): ${v.help} -> ` +
        v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
    }""", skip or [])
    return list(results)


def _pipeline(user: Any) -> str:
    import io

    upload, _ = upload_create(owner=user, file=io.BytesIO(make_csv(20)), original_name="d.csv")
    pipeline, _ = pipeline_start(upload=upload, owner=user)
    return str(pipeline.job_id)


# Fifteen pages, each audited at two widths: more than the suite's 120 s on a loaded machine.
@pytest.mark.timeout(360)
async def test_every_page_passes_the_axe_audit(make_user, login, new_context, live_site):
    user = await sync_to_async(make_user)(is_staff=True)
    job = await sync_to_async(job_start)(kind="demo.slow", owner=user)
    # An unread notification, so the bell shows its count on every page.
    await sync_to_async(notification_create)(recipient=user, kind="demo", title="Welcome")
    parent = await sync_to_async(_pipeline)(user)
    anonymous = await new_context()
    signed_in = await new_context()
    await login(signed_in, user)
    pages = [
        (anonymous, "/login/", "form"),
        (anonymous, "/signup/", "form"),
        (signed_in, "/", "#bell-count:not([hidden])"),
        (signed_in, "/live/", "main"),
        (signed_in, "/jobs/", "li.job"),
        (signed_in, f"/jobs/{job.pk}/", "#job[data-subscribed]"),
        (signed_in, f"/jobs/{parent}/", "#children tr"),
        (signed_in, "/rooms/", "main"),
        (signed_in, "/rooms/lobby/", "#composer"),
        (signed_in, "/pipelines/", "main"),
        (signed_in, "/schedules/", "main"),
        (signed_in, "/ops/", "#hub-state[data-state=open]"),
        (signed_in, "/ops/failures/", "main"),
        (signed_in, "/api/docs", "#swagger-ui .opblock"),  # rendered from static, offline
    ]
    found: dict[str, list[str]] = {}
    for ctx, path, ready in pages:
        page = await ctx.new_page()
        await page.goto(live_site.http_url + path)
        # Generous: Swagger UI parses 1.4 MB of script first, slow on a loaded machine.
        await expect(page.locator(ready).first).to_be_attached(timeout=30_000)
        await expect(page.locator(".errors-wrapper")).to_have_count(0)  # Swagger UI's errors
        for width in (1100, PHONE["width"]):
            await page.set_viewport_size({"width": width, "height": 800})
            if problems := await audit(page, THIRD_PARTY_RULES.get(path)):
                found[f"{path} at {width}px"] = problems
        await page.close()
    assert not found, "\n".join(f"{where}:\n  " + "\n  ".join(p) for where, p in found.items())


async def test_a_phone_wide_screen_has_a_menu_and_keeps_things_on_screen(
        make_user, login, new_context, live_site):
    ctx = await new_context(viewport=PHONE)
    await login(ctx, await sync_to_async(make_user)())
    page = await ctx.new_page()
    await page.goto(live_site.http_url + "/")
    nav = page.get_by_role("navigation", name="Main")
    menu = page.get_by_role("button", name="Menu")
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await expect(nav.get_by_role("link", name="My jobs")).to_be_hidden()
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(nav.get_by_role("link", name="My jobs")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(nav.get_by_role("link", name="My jobs")).to_be_hidden()
    await expect(menu).to_be_focused()

    # Nothing wider than the screen: no sideways scrolling, "Log out" on one line.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    logout = page.get_by_role("button", name="Log out")
    lines = await logout.evaluate("""b => {
      const r = document.createRange(); r.selectNodeContents(b);
      return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }""")
    assert lines == 1
    bell = page.get_by_role("button", name="Notifications")
    await bell.click()
    box = await page.locator("#bell-menu").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    # The menu from the keyboard: Enter opens it, Tab reaches its links.
    await page.keyboard.press("Escape")
    await menu.focus()
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    await expect(nav.get_by_role("link").first).to_be_focused()


async def test_the_skip_link_is_the_first_stop_and_jumps_to_the_content(
        make_user, login, context, page, live_site):
    await login(context, await sync_to_async(make_user)())
    await page.goto(live_site.http_url + "/jobs/")
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    await page.keyboard.press("Tab")  # the first thing inside the page's content
    focused = await page.evaluate("document.activeElement.closest('main') !== null")
    assert focused
