"""Browser tests: a real Chromium (Debian's ``/usr/bin/chromium``) on a real ASGI server.

Playwright's **async** API, with the browser living in the session's event loop. (The
sync API leaves an event loop marked as running in the test's thread between calls,
so Django's ORM raises ``SynchronousOnlyOperation`` and ``taskstream.hub.publish``
refuses to run there; the async API has no such trap.) Each test module here starts::

    pytestmark = [
        pytest.mark.e2e,
        pytest.mark.asyncio(loop_scope="session"),
        pytest.mark.django_db(transaction=True),  # the server process reads committed rows
    ]

and its tests are ``async def``. A coroutine test without the session loop scope is
refused at collection with a message saying so. Sync helpers that touch the database
(``make_user``, ``session_cookie``, services) run as ``await sync_to_async(fn)(...)``;
publish with ``await apublish(...)``.

Fixtures:

* ``browser`` (session): the Chromium instance.
* ``live_site`` (session): the demo site's server (``ServerProcess``); ``live_site.http_url``.
  Tests that restart or reconfigure a server take their own with ``start_server(...)``.
* ``context``: a fresh browser context (own cookies/storage) per test. When the test
  fails, every page's screenshot and console log go to ``var/test-logs/<test>-<n>.png``
  / ``.log``; an uncaught page error fails the test.
* ``new_context``: ``await new_context()`` for more contexts (a second user), with the
  same evidence and checks; all are closed after the test.
* ``page``: a page in ``context``.
* ``login``: ``await login(context, user)`` signs the context in as ``user`` (a real
  session cookie, no login form).

Set ``TASKSTREAM_CHROMIUM`` to use another Chromium binary. Without one, the tests are
skipped locally with the install command, and fail under CI (``CI`` set).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from taskstream.testing import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "var" / "test-logs"
E2E_DIR = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR not in Path(str(item.path)).parents:
            continue
        item.add_marker(pytest.mark.e2e)
        marker = item.get_closest_marker("asyncio")
        if marker is not None and marker.kwargs.get("loop_scope") != "session":
            raise pytest.UsageError(
                f"{item.nodeid}: browser tests run in the session event loop; add "
                'pytest.mark.asyncio(loop_scope="session") to the module\'s pytestmark '
                "(see tests/e2e/conftest.py)"
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # The ``context`` fixture reads this in its teardown to save evidence of failures.
    setattr(item, f"rep_{report.when}", report)
    return report


def _chromium() -> str:
    path = os.environ.get("TASKSTREAM_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        message = f"no Chromium at {path}: apt-get install chromium (or set TASKSTREAM_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=executable,
                                                    args=CHROMIUM_ARGS, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="session")
def live_site(hub_server: ServerProcess) -> ServerProcess:
    """The server the browser tests share: the demo site with default settings."""
    return hub_server


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid.split("::", 1)[-1]).strip("-")[:120]


@pytest_asyncio.fixture(loop_scope="session")
async def new_context(browser: Browser, request: pytest.FixtureRequest,
                      ) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    """``await new_context()``: another browser context (another user), closed after the test.

    Every context made here leaves evidence when the test fails, and an uncaught page
    error in any of them fails the test.
    """
    made: list[BrowserContext] = []
    console: list[str] = []
    page_errors: list[str] = []

    async def make(**options: Any) -> BrowserContext:
        ctx = await browser.new_context(**{"viewport": {"width": 1100, "height": 800},
                                           **options})
        ctx.set_default_timeout(10_000)
        label = f"context {len(made)}"

        def watch(page: Page) -> None:
            page.on("console", lambda msg: console.append(f"{label} [{msg.type}] {msg.text}"))
            page.on("pageerror", lambda exc: page_errors.append(f"{label}: {exc}"))

        ctx.on("page", watch)
        made.append(ctx)
        return ctx

    yield make
    failed = any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
                 for when in ("setup", "call"))
    if failed:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        name = _slug(request.node.nodeid)
        for c, ctx in enumerate(made):
            for n, page in enumerate(ctx.pages):
                shot = LOG_DIR / (f"{name}-{n}.png" if c == 0 else f"{name}-c{c}-{n}.png")
                try:
                    await page.screenshot(path=str(shot), full_page=True)
                except Exception as exc:  # the page may have crashed: keep the other evidence
                    console.append(f"[screenshot of context {c} page {n} failed] {exc}")
        (LOG_DIR / f"{name}.log").write_text("\n".join(console + page_errors) + "\n")
    for ctx in made:
        await ctx.close()
    if page_errors and not failed:
        pytest.fail("uncaught errors in the page:\n" + "\n".join(page_errors))


@pytest_asyncio.fixture(loop_scope="session")
async def context(new_context: Callable[..., Awaitable[BrowserContext]]) -> BrowserContext:
    """A fresh browser context (own cookies and storage) for the test."""
    return await new_context()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
def login(session_cookie: Callable[[Any], str], live_site: ServerProcess,
          ) -> Iterator[Callable[..., Awaitable[None]]]:
    """``await login(context, user)``: put a real session cookie for ``user`` on the context."""

    async def sign_in(ctx: BrowserContext, user: Any, site: ServerProcess | None = None) -> None:
        name, _, value = (await sync_to_async(session_cookie)(user)).partition("=")
        # Cookies are per host, not per port: this one also reaches start_server() sites.
        await ctx.add_cookies([{"name": name, "value": value,
                                "url": (site or live_site).http_url, "httpOnly": True}])

    yield sign_in
