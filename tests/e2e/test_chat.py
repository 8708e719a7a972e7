"""Chat and the notification bell in Chromium: two users in two browser contexts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, Page, expect

from taskstream.rooms.models import Message
from taskstream.rooms.services import room_create
from taskstream.testing import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
RECONNECT_TIMEOUT = 30_000


async def open_room(page: Page, site: ServerProcess, slug: str) -> None:
    await page.goto(f"{site.http_url}/rooms/{slug}/")
    await expect(page.locator("#room-state")).to_have_attribute("data-state", "open")


def bodies(page: Page) -> Any:
    return page.locator("#messages li.msg .msg-body")


async def two_users(make_user, login, browser, context, site, slug, **room) -> tuple[Any, ...]:
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    await sync_to_async(room_create)(slug=slug, name=slug.title(), creator=alice,
                                     members=[bob], **room)
    await login(context, alice, site)
    bob_context: BrowserContext = await browser.new_context()
    await login(bob_context, bob, site)
    return alice, bob, await context.new_page(), await bob_context.new_page(), bob_context


async def test_two_users_chat_with_presence_and_typing(make_user, login, browser, context,
                                                       live_site):
    _alice, _bob, a, b, bob_context = await two_users(make_user, login, browser, context,
                                                      live_site, "chat", is_private=True)
    try:
        await open_room(a, live_site, "chat")
        await expect(a.locator("#presence li")).to_have_text(["alice (you)"])
        await open_room(b, live_site, "chat")
        await expect(a.locator("#presence li")).to_have_text(["alice (you)", "bob"])
        await expect(b.locator("#presence li")).to_have_text(["alice", "bob (you)"])

        await a.locator("#body").press_sequentially("hel")
        await expect(b.locator("#typing")).to_have_text("alice is typing…")
        await a.locator("#body").press_sequentially("lo bob")
        await a.locator("#body").press("Enter")
        await expect(bodies(b)).to_have_text(["hello bob"])
        await expect(bodies(a)).to_have_text(["hello bob"])
        await expect(b.locator("#typing")).to_have_text("")  # the message ends the typing

        await b.locator("#body").fill(XSS)
        await b.get_by_role("button", name="Send").click()
        await expect(bodies(a)).to_have_text(["hello bob", XSS])
        assert await a.evaluate("window.__xss") is None
        await a.reload()  # the server-rendered history escapes it too
        await expect(bodies(a)).to_have_text(["hello bob", XSS])
        assert await a.evaluate("window.__xss") is None

        empty_then_long = "x" * 4001
        await a.locator("#body").evaluate("(el, v) => { el.removeAttribute('maxlength'); "
                                          "el.value = v; }", empty_then_long)
        await a.get_by_role("button", name="Send").click()
        await expect(a.locator("#composer-error")).to_contain_text("at most 4000 characters")

        await b.close()
        await expect(a.locator("#presence li")).to_have_text(["alice (you)"])
        assert await Message.objects.filter(room__slug="chat").acount() == 2
    finally:
        await bob_context.close()


async def test_scrolling_back_loads_older_pages(make_user, login, context, page, live_site):
    alice = await sync_to_async(make_user)("alice")
    room = await sync_to_async(room_create)(slug="long", name="Long", creator=alice)
    await Message.objects.abulk_create(Message(room=room, author=alice, body=f"m{i}")
                                       for i in range(120))
    await login(context, alice)
    await open_room(page, live_site, "long")
    await expect(bodies(page)).to_have_count(50)
    for expected in (100, 120):
        await page.locator("#messages").evaluate("el => el.scrollTop = 0")
        await expect(bodies(page)).to_have_count(expected)
    await expect(page.locator("#history-status")).to_have_text("Beginning of the room")
    assert await bodies(page).all_text_contents() == [f"m{i}" for i in range(120)]


async def test_room_keeps_every_message_through_a_network_drop(make_user, login, browser,
                                                               context, start_server):
    site = start_server()
    alice, _bob, a, b, bob_context = await two_users(make_user, login, browser, context,
                                                     site, "drop")
    try:
        await open_room(a, site, "drop")
        await open_room(b, site, "drop")
        await a.locator("#body").fill("before")
        await a.locator("#body").press("Enter")
        await expect(bodies(b)).to_have_text(["before"])
        await sync_to_async(site.stop)()  # both browsers lose the server
        await expect(b.locator("#room-state")).to_have_attribute("data-state", "reconnecting")
        for n in range(3):  # sent over HTTP from elsewhere while they are offline
            await sync_to_async(_post)(alice, "drop", f"while away {n}")
        await sync_to_async(site.start)()
        await expect(bodies(b)).to_have_text(["before", "while away 0", "while away 1",
                                              "while away 2"], timeout=RECONNECT_TIMEOUT)
        await expect(b.locator("#room-state")).to_have_attribute("data-state", "open")
        # Alice's page comes back on its own jittered schedule: her message goes out once it is.
        await expect(a.locator("#room-state")).to_have_attribute("data-state", "open",
                                                                 timeout=RECONNECT_TIMEOUT)
        await a.locator("#body").fill("after")
        await a.locator("#body").press("Enter")
        await expect(bodies(b)).to_have_text(["before", "while away 0", "while away 1",
                                              "while away 2", "after"])
        await expect(b.locator("#presence li")).to_have_text(["alice", "bob (you)"])
    finally:
        await bob_context.close()


def _post(user: Any, slug: str, body: str) -> None:
    from django.db import transaction

    from taskstream.rooms.models import Room
    from taskstream.rooms.services import message_create

    with transaction.atomic():
        message_create(room=Room.objects.get(slug=slug), author=user, body=body)


async def test_bell_counts_live_in_every_tab_and_shows_a_finished_job(
        make_user, login, context, live_site, celery_worker):
    from taskstream.jobs import job_start

    alice = await sync_to_async(make_user)("alice")
    await login(context, alice)
    tabs = [await context.new_page() for _ in range(2)]
    for tab in tabs:
        await tab.goto(f"{live_site.http_url}/rooms/")
        await expect(tab.locator("#bell")).to_have_attribute("data-unread", "0")
    await sync_to_async(job_start)(kind="demo.report", owner=alice,
                                   params={"rows": 2, "row_seconds": 0})
    deadline = time.monotonic() + 30
    for tab in tabs:
        await expect(tab.locator("#bell-count")).to_have_text(
            "1", timeout=max(1_000, int((deadline - time.monotonic()) * 1000)))
    await tabs[0].locator("#bell-button").click()
    item = tabs[0].locator("#bell-list .bell-item.unread")
    await expect(item.locator(".bell-title")).to_have_text("Report is ready")
    assert await item.locator("a").get_attribute("href") == "/jobs/"
    await tabs[0].get_by_role("button", name="Mark all read").click()
    for tab in tabs:  # read in one tab: every tab's badge goes
        await expect(tab.locator("#bell")).to_have_attribute("data-unread", "0")
        await expect(tab.locator("#bell-count")).to_be_hidden()


async def test_edit_and_delete_my_message_seen_live_by_the_other(make_user, login, browser,
                                                                 context, live_site):
    _alice, _bob, a, b, bob_context = await two_users(make_user, login, browser, context,
                                                      live_site, "edits", is_private=True)
    try:
        await open_room(a, live_site, "edits")
        await expect(a.locator("#room-empty")).to_have_text("No messages yet. Say hello!")
        await open_room(b, live_site, "edits")
        await a.get_by_label("Message", exact=True).fill("helo bob")
        await a.get_by_label("Message", exact=True).press("Enter")
        await expect(bodies(b)).to_have_text(["helo bob"])
        await expect(a.locator("#room-empty")).to_be_hidden()
        await expect(b.locator("#room-empty")).to_be_hidden()
        # Bob may not edit or delete alice's message: no buttons for him.
        await expect(b.locator(".msg-action")).to_have_count(0)

        # Edit from the keyboard: the Edit button, the text, Enter.
        await a.get_by_role("button", name="Edit message from alice").focus()
        await a.keyboard.press("Enter")
        edit = a.get_by_role("textbox", name="Edit message")
        await expect(edit).to_be_focused()
        await edit.fill("hello bob")
        await edit.press("Enter")
        await expect(bodies(b)).to_have_text(["hello bob"])
        await expect(b.locator("#messages .msg-time")).to_contain_text("(edited)")
        await expect(bodies(a)).to_have_text(["hello bob"])

        a.once("dialog", lambda dialog: dialog.accept())
        await a.get_by_role("button", name="Delete message from alice").click()
        await expect(bodies(b)).to_have_text(["message deleted"])
        await expect(a.locator(".msg-action")).to_have_count(0)
        assert (await Message.objects.aget(room__slug="edits")).deleted_at is not None
    finally:
        await bob_context.close()
