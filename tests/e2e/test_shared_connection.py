"""One hub socket per browser: many tabs of one user stay live, offline is shown and healed.

The server here allows ONE socket per user (``MAX_CONNECTIONS_PER_USER=1``), so a page or
a browser that opens a second socket is refused (close 4430) and shows it: every test
below that sees its pages live also proves they share one socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, Page, expect

from taskstream.hub import apublish
from taskstream.testing import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

# Pages without SharedWorker (Chrome on Android, say): client.js falls back to one socket
# per page, shared by every Hub on it.
NO_SHARED_WORKER = "delete window.SharedWorker;"


@pytest.fixture(scope="module")
def one_socket_site(start_server: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    server = start_server(TASKSTREAM_JSON=json.dumps({"MAX_CONNECTIONS_PER_USER": 1}))
    yield server
    server.stop()


async def signed_in(make_user: Any, login: Any, context: BrowserContext,
                    site: ServerProcess) -> str:
    user = await sync_to_async(make_user)()
    await login(context, user, site)
    return f"user:{user.pk}"


async def open_live(page: Page, site: ServerProcess, timeout: float = 5_000) -> None:
    await page.goto(f"{site.http_url}/live/", timeout=timeout)
    await expect(page.locator("#events[data-subscribed]")).to_have_count(1, timeout=timeout)
    await expect(page.locator("#state")).to_have_attribute("data-state", "open")


def event_texts(page: Page) -> Any:
    return page.locator("#events li.event .event-data")


async def test_thirty_tabs_of_one_user_are_all_live(make_user, login, context,
                                                    one_socket_site):
    # Each /live/ tab holds two Hubs (the page's and the bell's): 60 Hubs, one socket.
    topic = await signed_in(make_user, login, context, one_socket_site)
    pages = [await context.new_page() for _ in range(30)]
    # Loaded side by side, as a restored session would: slow on a loaded machine.
    await asyncio.gather(*(open_live(page, one_socket_site, timeout=60_000) for page in pages))
    assert await pages[0].evaluate("window.taskstreamDemoHub.sharing") == "worker"
    await apublish(topic, "note.created", {"message": "to every tab"})
    for page in pages:
        await expect(event_texts(page)).to_have_text(["to every tab"])
        await expect(page.locator("#state")).to_have_attribute("data-state", "open")
        await expect(page.locator("#conn")).to_be_hidden()


async def test_without_shared_worker_the_bell_and_the_page_share_one_socket(
        make_user, login, context, page, one_socket_site):
    topic = await signed_in(make_user, login, context, one_socket_site)
    await context.add_init_script(NO_SHARED_WORKER)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await open_live(page, one_socket_site)
    assert await page.evaluate("window.taskstreamDemoHub.sharing") == "page"
    await apublish(topic, "note.created", {"message": "once"})
    await expect(event_texts(page)).to_have_text(["once"])
    assert sockets == [one_socket_site.ws_url]


async def test_refused_tab_says_why_and_revives_when_another_tab_closes(
        make_user, login, context, one_socket_site):
    topic = await signed_in(make_user, login, context, one_socket_site)
    await context.add_init_script(NO_SHARED_WORKER)  # a socket per tab: the cap bites
    first = await context.new_page()
    await open_live(first, one_socket_site)
    second = await context.new_page()
    await second.goto(f"{one_socket_site.http_url}/live/")
    await expect(second.locator("#state")).to_have_attribute("data-state", "reconnecting")
    await expect(second.locator("#state-detail")).to_contain_text("too many connections")
    await expect(second.locator("#conn")).to_contain_text("too many connections")
    await first.close()
    # The closing tab tells the others; the refused one does not wait out its backoff.
    await expect(second.locator("#state")).to_have_attribute("data-state", "open")
    await expect(second.locator("#conn")).to_be_hidden()
    await apublish(topic, "note.created", {"message": "live again"})
    await expect(event_texts(second)).to_have_text(["live again"])


async def test_offline_is_shown_and_online_reconnects_at_once_with_what_was_missed(
        make_user, login, context, page, one_socket_site):
    topic = await signed_in(make_user, login, context, one_socket_site)
    await open_live(page, one_socket_site)
    await apublish(topic, "tick", {"message": "before"})
    await expect(event_texts(page)).to_have_text(["before"])

    await context.set_offline(True)
    await expect(page.locator("#state")).to_have_attribute("data-state", "offline")
    await expect(page.locator("#conn")).to_contain_text("Offline")
    for i in range(3):
        await apublish(topic, "tick", {"message": f"missed {i}"})
    # Nothing is retried while offline; online reconnects without a backoff wait.
    await context.set_offline(False)
    await expect(page.locator("#state")).to_have_attribute("data-state", "open",
                                                           timeout=5_000)
    await expect(event_texts(page)).to_have_text(["before", "missed 0", "missed 1",
                                                  "missed 2"])
    await expect(page.locator("#conn")).to_be_hidden()
    await apublish(topic, "tick", {"message": "after"})
    await expect(event_texts(page)).to_have_text(["before", "missed 0", "missed 1", "missed 2",
                                                  "after"])


async def test_reconnect_now_is_a_keyboard_button(make_user, login, context, page,
                                                  one_socket_site):
    topic = await signed_in(make_user, login, context, one_socket_site)
    await open_live(page, one_socket_site)
    # The browser says offline while the network works: nothing retries by itself.
    await page.evaluate("window.dispatchEvent(new Event('offline'))")
    await expect(page.locator("#state")).to_have_attribute("data-state", "offline")
    await apublish(topic, "tick", {"message": "while offline"})
    # The bar follows the top bar: one Tab from "Log out" reaches its button.
    await page.get_by_role("button", name="Log out").focus()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Reconnect now")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#state")).to_have_attribute("data-state", "open")
    await expect(event_texts(page)).to_have_text(["while offline"])
    await expect(page.locator("#conn")).to_be_hidden()


async def test_a_tab_opened_after_signing_in_again_is_live_at_once(make_user, login, context,
                                                                   page, one_socket_site):
    await signed_in(make_user, login, context, one_socket_site)
    await open_live(page, one_socket_site)
    other = await context.new_page()
    await open_live(other, one_socket_site)
    # Logging out closes the browser's socket with 4401: a long backoff for the other tab...
    await page.get_by_role("button", name="Log out").click()
    await expect(other.locator("#state")).to_have_attribute("data-state", "reconnecting")
    # ...which a page loaded under the next session does not wait out.
    topic = await signed_in(make_user, login, context, one_socket_site)
    fresh = await context.new_page()
    await open_live(fresh, one_socket_site)
    await apublish(topic, "note.created", {"message": "new session"})
    await expect(event_texts(fresh)).to_have_text(["new session"])
