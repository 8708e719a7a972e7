"""client.js in a real browser: the /live/ page against real servers and a real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings
from playwright.async_api import Page, expect

from taskstream.hub import apublish
from taskstream.testing import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

# Reconnecting waits out a backoff of up to 10 s, plus the server's start-up.
RECONNECT_TIMEOUT = 30_000


async def open_live_page(page: Page, site: ServerProcess) -> None:
    await page.goto(f"{site.http_url}/live/")
    # Subscribed: from here on nothing published to the topic can be missed.
    await expect(page.locator("#events[data-subscribed]")).to_have_count(1)
    await expect(page.locator("#state")).to_have_attribute("data-state", "open")


def event_texts(page: Page) -> Any:
    return page.locator("#events li.event .event-data")


async def signed_in_page(make_user, login, context, page, site) -> tuple[Any, str]:
    user = await sync_to_async(make_user)()
    await login(context, user, site)
    await open_live_page(page, site)
    return user, f"user:{user.pk}"


async def test_published_event_appears_live(make_user, login, context, page, live_site):
    _, topic = await signed_in_page(make_user, login, context, page, live_site)
    await apublish(topic, "note.created", {"message": "hello from a task"})
    await expect(event_texts(page)).to_have_text(["hello from a task"])
    await expect(page.locator("#events li.event .event-name")).to_have_text(["note.created"])
    await expect(page.locator("#count")).to_have_text("1")


async def test_test_event_button_publishes_to_own_topic(make_user, login, context, page,
                                                        live_site):
    await signed_in_page(make_user, login, context, page, live_site)
    await page.get_by_role("button", name="Send me a test event").click()
    await expect(page.locator("#events li.event .event-name")).to_have_text(["demo.ping"])
    await expect(event_texts(page)).to_have_text(["Test event from the server"])


async def test_live_page_requires_login(page, live_site):
    response = await page.request.post(f"{live_site.http_url}/live/ping/",
                                       max_redirects=0)
    assert response.status in (302, 403)
    response = await page.request.get(f"{live_site.http_url}/live/", max_redirects=0)
    assert response.status == 302


async def test_reconnects_after_restart_and_gets_missed_events_once(start_server, make_user,
                                                                    login, context, page):
    server = start_server()
    try:
        _, topic = await signed_in_page(make_user, login, context, page, server)
        for i in range(3):
            await apublish(topic, "tick", {"message": f"event {i}"})
        await expect(event_texts(page)).to_have_text([f"event {i}" for i in range(3)])

        await asyncio.to_thread(server.stop)
        await expect(page.locator("#state")).to_have_attribute("data-state", "reconnecting")
        for i in range(3, 8):  # published while the page has no connection at all
            await apublish(topic, "tick", {"message": f"event {i}"})
        await asyncio.to_thread(server.start)

        await expect(page.locator("#state")).to_have_attribute("data-state", "open",
                                                               timeout=RECONNECT_TIMEOUT)
        await expect(event_texts(page)).to_have_text([f"event {i}" for i in range(8)],
                                                     timeout=RECONNECT_TIMEOUT)
        # A live event after the replay: any duplicate of the replay would precede it.
        await apublish(topic, "tick", {"message": "event 8"})
        await expect(event_texts(page)).to_have_text([f"event {i}" for i in range(9)])
        cursors = await page.locator("#events li.event").evaluate_all(
            "items => items.map(li => li.dataset.cursor)")
        assert len(set(cursors)) == 9
    finally:
        await asyncio.to_thread(server.stop)


async def test_gap_is_surfaced_when_history_was_trimmed(start_server, make_user, login,
                                                        context, page):
    server = start_server(TASKSTREAM_JSON=json.dumps({"LOG_MAXLEN": 5}))
    try:
        _, topic = await signed_in_page(make_user, login, context, page, server)
        await apublish(topic, "tick", {"message": "before"})
        await expect(event_texts(page)).to_have_text(["before"])

        await asyncio.to_thread(server.stop)
        # Redis trims whole stream nodes: publish far past the window, trimming as we go.
        with override_settings(TASKSTREAM={**settings.TASKSTREAM, "LOG_MAXLEN": 5}):
            for i in range(400):
                await apublish(topic, "tick", {"message": f"missed {i}"})
        await asyncio.to_thread(server.start)

        await expect(page.locator("#events li.gap")).to_have_count(1, timeout=RECONNECT_TIMEOUT)
        await expect(page.locator("#state")).to_have_attribute("data-state", "open")
        await apublish(topic, "tick", {"message": "after"})
        await expect(event_texts(page)).to_have_text(["before", "after"])
        kinds = await page.locator("#events li").evaluate_all(
            "items => items.map(li => li.className)")
        assert kinds == ["event", "gap", "event"]
    finally:
        await asyncio.to_thread(server.stop)


async def test_frozen_server_is_detected_by_heartbeat_and_resumed(start_server, make_user,
                                                                  login, context, page):
    # The socket stays open but nothing answers: only the client's heartbeat notices.
    server = start_server(TASKSTREAM_JSON=json.dumps({"HEARTBEAT": 1}))
    try:
        _, topic = await signed_in_page(make_user, login, context, page, server)
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGSTOP)
        try:
            await expect(page.locator("#state")).to_have_attribute("data-state",
                                                                   "reconnecting")
            await apublish(topic, "tick", {"message": "while frozen"})
        finally:
            os.killpg(server.proc.pid, signal.SIGCONT)
        await expect(event_texts(page)).to_have_text(["while frozen"], timeout=RECONNECT_TIMEOUT)
        await expect(page.locator("#state")).to_have_attribute("data-state", "open")
    finally:
        await asyncio.to_thread(server.stop)


async def test_event_data_is_shown_as_text_never_as_html(make_user, login, context, page,
                                                         live_site):
    _, topic = await signed_in_page(make_user, login, context, page, live_site)
    payload = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'
    await apublish(topic, "note.created", {"message": payload})
    await apublish(topic, "note.created", {"html": payload, "title": "<b>bold</b>", "n": 1})
    await expect(event_texts(page)).to_have_text([
        payload,
        json.dumps({"html": payload, "title": "<b>bold</b>", "n": 1}, separators=(",", ":")),
    ])
    assert await page.locator("#events img, #events script, #events b").count() == 0
    assert await page.evaluate("window.__pwned === undefined")
