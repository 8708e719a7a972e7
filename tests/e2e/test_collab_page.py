"""Shared documents in Chromium: the demo's Docs pages on taskstream/collab.js, the hub and
the collab API. Two people type into one document at once and end with the same text; one
goes offline for 5 s, edits, comes back, and both converge; a viewer cannot change it.

The desktop and 375 px screenshots of a shared document go to var/screenshots/
(docs/collab.png and docs/collab-mobile.png are copies of them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from playwright.async_api import BrowserContext, Page, expect

from taskstream.testing import ServerProcess
from tests.e2e.test_csp import RECORD_VIOLATIONS
from tests.e2e.test_site import PHONE, audit

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# Generous: a loaded machine, and a reconnect after the network comes back.
CONVERGE = 30_000
NO_DOCS = "No documents yet: start one."

@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


def _document(owner: Any, title: str, **members: tuple[Any, str]) -> str:
    from taskstream.collab import services

    document = services.document_create(owner=owner, title=title)
    for user, role in members.values():
        services.document_member_set(document=document, by=owner,
                                     username=user.get_username(), role=role)
    return str(document.pk)


async def person(new_context: Any, login: Any, user: Any, **options: Any) -> Page:
    ctx: BrowserContext = await new_context(**options)
    await ctx.add_init_script(RECORD_VIOLATIONS)
    await login(ctx, user)
    return await ctx.new_page()


async def open_doc(page: Page, site: ServerProcess, doc_id: str) -> None:
    await page.goto(f"{site.http_url}/docs/{doc_id}/")
    await status(page, "saved")


async def status(page: Page, value: str) -> None:
    """Wait for the page's saved / syncing / offline indicator to say ``value``."""
    await expect(page.locator("#doc-status")).to_have_attribute("data-status", value,
                                                                timeout=CONVERGE)


def editor(page: Page) -> Any:
    return page.locator("#editor .cm-content")


async def text_of(page: Page) -> str:
    return str(await page.evaluate("window.taskstreamDoc.text"))


async def same_text(pages: list[Page], expected: str | None = None) -> str:
    """Wait until every page holds the same text (and ``expected``, if given); return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONVERGE / 1000
    while True:
        texts = [await text_of(p) for p in pages]
        if len(set(texts)) == 1 and (expected is None or texts[0] == expected):
            # What the editors show is the shared text too.
            shown = [await p.evaluate("window.taskstreamDoc.view.state.doc.toString()")
                     for p in pages]
            if shown == texts:
                return texts[0]
        if loop.time() > deadline:
            raise AssertionError(f"the pages did not converge: {texts!r}")
        await pages[0].wait_for_timeout(100)


async def test_create_share_and_type_together(make_user, login, new_context, live_site):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    a = await person(new_context, login, alice)
    b = await person(new_context, login, bob)

    # Alice starts a document from the list and shares it with Bob from its page.
    await a.goto(f"{live_site.http_url}/docs/")
    await expect(a.locator("#docs-status")).to_have_text(NO_DOCS, timeout=CONVERGE)
    await a.get_by_label("Title").fill("Plan <b>draft</b>")
    await a.get_by_role("button", name="Create").click()
    await a.wait_for_url("**/docs/*/", timeout=CONVERGE)
    doc_url = a.url
    await expect(a.locator("#doc-title")).to_have_text("Plan <b>draft</b>", timeout=CONVERGE)
    await status(a, "saved")
    await a.get_by_label("User").fill("bob")
    await a.get_by_label("Role").select_option("editor")
    await a.get_by_role("button", name="Share").click()
    await expect(a.locator("#members li")).to_have_text(
        ["alice (owner)", "bob (can edit)Remove"], timeout=CONVERGE)

    await editor(a).click()
    await a.keyboard.type("middle")
    await status(a, "saved")
    await b.goto(f"{live_site.http_url}/docs/")
    await b.get_by_role("link", name="Plan <b>draft</b>").click()
    await status(b, "saved")
    await same_text([a, b], "middle")
    await expect(b.locator("#peers li")).to_have_text(["bob (you)", "alice"], timeout=CONVERGE)

    # Both type at once: Alice at the start, Bob at the end.
    await editor(a).click()
    await a.keyboard.press("Control+Home")
    await editor(b).click()
    await b.keyboard.press("Control+End")
    await asyncio.gather(a.keyboard.type("alice was here, "), b.keyboard.type(", and bob too"))
    await same_text([a, b], "alice was here, middle, and bob too")
    for page in (a, b):
        await status(page, "saved")
    # Each sees the other's cursor with their name.
    await expect(a.locator("#editor .cm-ySelectionInfo")).to_have_text("bob", timeout=CONVERGE)
    await expect(b.locator("#editor .cm-ySelectionInfo")).to_have_text("alice", timeout=CONVERGE)

    # It was stored: a fresh page gets the same text over HTTP.
    await b.goto(doc_url)
    await status(b, "saved")
    assert await text_of(b) == "alice was here, middle, and bob too"
    for page in (a, b):
        assert await page.evaluate("window.__csp") == []


async def test_offline_edits_merge_when_the_network_is_back(make_user, login, new_context,
                                                            live_site):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    doc_id = await sync_to_async(_document)(alice, "Offline", bob=(bob, "editor"))
    a = await person(new_context, login, alice)
    b = await person(new_context, login, bob)
    await open_doc(a, live_site, doc_id)
    await open_doc(b, live_site, doc_id)
    await editor(a).click()
    await a.keyboard.type("shared line")
    await same_text([a, b], "shared line")

    await b.context.set_offline(True)
    await status(b, "offline")
    await editor(b).click()
    await b.keyboard.press("Control+End")
    await b.keyboard.type(" +bob offline")
    await editor(a).click()
    await a.keyboard.press("Control+Home")
    await a.keyboard.type("alice online+ ")
    await status(a, "saved")
    await asyncio.sleep(5)  # the scenario: five seconds away (nothing waits on it)
    assert await text_of(a) == "alice online+ shared line"
    assert await text_of(b) == "shared line +bob offline"
    await status(b, "offline")

    await b.context.set_offline(False)
    await same_text([a, b], "alice online+ shared line +bob offline")
    for page in (a, b):
        await status(page, "saved")
    # Stored, not just passed between the two pages.
    fresh = await person(new_context, login, alice)
    await open_doc(fresh, live_site, doc_id)
    assert await text_of(fresh) == "alice online+ shared line +bob offline"


def _lose_the_log(doc_id: str) -> None:
    # What Redis losing the topic's recent events looks like to a client: its cursor no
    # longer links to what follows, so it gets `gap` instead of a replay.
    from taskstream.hub import keys
    from taskstream.hub.redis import sync_client

    sync_client().delete(keys.log_key(f"doc:{doc_id}"))


async def test_a_gap_resyncs_over_http_and_keeps_the_offline_edits(make_user, login,
                                                                   new_context, live_site):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    doc_id = await sync_to_async(_document)(alice, "Gap", bob=(bob, "editor"))
    a = await person(new_context, login, alice)
    b = await person(new_context, login, bob)
    await open_doc(a, live_site, doc_id)
    await open_doc(b, live_site, doc_id)
    await editor(a).click()
    await a.keyboard.type("one")
    await same_text([a, b], "one")

    await b.context.set_offline(True)
    await status(b, "offline")
    await editor(b).click()
    await b.keyboard.press("Control+End")
    await b.keyboard.type(" three")
    await editor(a).click()
    await a.keyboard.press("Control+End")
    await a.keyboard.type(" two")
    await status(a, "saved")
    await sync_to_async(_lose_the_log)(doc_id)
    await a.keyboard.type("!")  # the first event of the new log: Bob's cursor is not before it
    await status(a, "saved")

    assert await b.evaluate("window.taskstreamDoc.resyncs") == 0
    await b.context.set_offline(False)
    text = await same_text([a, b])
    # Both inserted right after "one": Yjs orders such inserts the same way everywhere.
    assert text in ("one two! three", "one three two!"), text
    assert await b.evaluate("window.taskstreamDoc.resyncs") >= 1
    for page in (a, b):
        await status(page, "saved")
    fresh = await person(new_context, login, bob)
    await open_doc(fresh, live_site, doc_id)
    assert await text_of(fresh) == text


async def test_a_viewer_reads_along_but_cannot_edit(make_user, login, new_context, live_site):
    alice = await sync_to_async(make_user)("alice")
    carol = await sync_to_async(make_user)("carol")
    doc_id = await sync_to_async(_document)(alice, "Read only", carol=(carol, "viewer"))
    a = await person(new_context, login, alice)
    c = await person(new_context, login, carol)
    await open_doc(a, live_site, doc_id)
    await open_doc(c, live_site, doc_id)
    await expect(c.locator("#doc-role")).to_have_text("read only", timeout=CONVERGE)
    await expect(c.locator("#doc-readonly")).to_be_visible(timeout=CONVERGE)
    await expect(c.locator("#share")).to_be_hidden(timeout=CONVERGE)
    await expect(editor(c)).to_have_attribute("contenteditable", "false", timeout=CONVERGE)

    await editor(a).click()
    await a.keyboard.type("by alice")
    await same_text([a, c], "by alice")
    # A viewer is present (awareness) though it cannot write: each sees the other.
    await expect(c.locator("#peers li")).to_have_text(["carol (you)", "alice"], timeout=CONVERGE)
    await expect(a.locator("#peers li")).to_have_text(["alice (you)", "carol"], timeout=CONVERGE)
    await editor(c).click()
    await c.keyboard.type("carol was here")
    await c.keyboard.press("Backspace")
    await editor(a).click()
    await a.keyboard.type(".")
    await same_text([a, c], "by alice.")  # Alice's later edit arrived; Carol's never existed

    # The server refuses a viewer's update even when a page sends one itself.
    code = await c.evaluate("""async (topic) => {
      const { hub } = await import("/static/example/shared-hub.js");
      const m = await import("/static/taskstream/vendor/collab-editor.js");
      const doc = new m.Y.Doc();
      doc.getText("text").insert(0, "carol's");
      const update = m.toBase64(m.Y.encodeStateAsUpdate(doc));
      try {
        await hub.publish(topic, "update", { update, client: "x" });
        return "published";
      } catch (error) { return error.code; }
    }""", f"doc:{doc_id}")
    assert code == "forbidden"
    await a.reload()
    await status(a, "saved")
    assert await text_of(a) == "by alice."


async def test_an_editor_removed_while_editing_stops_at_once(make_user, login, new_context,
                                                             live_site):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    doc_id = await sync_to_async(_document)(alice, "Revoked", bob=(bob, "editor"))
    a = await person(new_context, login, alice)
    b = await person(new_context, login, bob)
    await open_doc(a, live_site, doc_id)
    await open_doc(b, live_site, doc_id)
    await editor(b).click()
    await b.keyboard.type("bob's line")
    await same_text([a, b], "bob's line")

    await a.get_by_role("button", name="Remove bob").click()
    await expect(a.locator("#members li")).to_have_text(["alice (owner)"], timeout=CONVERGE)
    # The server ends Bob's subscription (forbidden): his editor turns read-only at once.
    await status(b, "error")
    await expect(b.locator("#doc-error")).to_contain_text("no longer shared with you",
                                                          timeout=CONVERGE)
    await expect(editor(b)).to_have_attribute("contenteditable", "false", timeout=CONVERGE)
    await editor(a).click()
    await a.keyboard.press("Control+End")
    await a.keyboard.type(" and alice's")
    await status(a, "saved")
    assert await text_of(b) == "bob's line"  # nothing more reaches him
    await b.reload()
    await expect(b.locator("#doc-error")).to_have_text(
        "This document does not exist, or it is not shared with you.", timeout=CONVERGE)


async def test_non_members_get_nothing(make_user, login, new_context, live_site):
    alice = await sync_to_async(make_user)("alice")
    mallory = await sync_to_async(make_user)("mallory")
    doc_id = await sync_to_async(_document)(alice, "Private")
    m = await person(new_context, login, mallory)
    await m.goto(f"{live_site.http_url}/docs/{doc_id}/")
    await expect(m.locator("#doc-error")).to_have_text(
        "This document does not exist, or it is not shared with you.", timeout=CONVERGE)
    await expect(m.locator("#editor .cm-editor")).to_have_count(0)
    await m.goto(f"{live_site.http_url}/docs/")
    await expect(m.locator("#docs-status")).to_have_text(NO_DOCS, timeout=CONVERGE)


async def test_docs_pages_pass_axe_at_desktop_and_phone_width(make_user, login, new_context,
                                                              live_site):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    doc_id = await sync_to_async(_document)(alice, "Release notes", bob=(bob, "editor"))
    a = await person(new_context, login, alice)
    b = await person(new_context, login, bob)
    await open_doc(a, live_site, doc_id)
    await open_doc(b, live_site, doc_id)
    await editor(a).click()
    await a.keyboard.type("Release 1.4\n\nShared documents: several people edit one text at "
                          "once, online or offline, and always end with the same words.")
    await same_text([a, b])
    await editor(b).click()
    await b.keyboard.press("Control+End")
    await b.keyboard.type(" Cursors show who is where.")
    await same_text([a, b])
    await expect(a.locator("#editor .cm-ySelectionInfo")).to_have_text("bob", timeout=CONVERGE)
    await status(a, "saved")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    for width, name in ((1100, "collab.png"), (PHONE["width"], "collab-mobile.png")):
        await a.set_viewport_size({"width": width, "height": 800})
        # Nothing wider than the screen (the editor wraps long lines).
        assert await a.evaluate("document.documentElement.scrollWidth") <= width
        await a.screenshot(path=str(SCREENSHOTS / name))
        if problems := await audit(a):
            found[f"document at {width}px"] = problems
    await a.goto(f"{live_site.http_url}/docs/")
    await expect(a.get_by_role("link", name="Release notes")).to_be_visible(timeout=CONVERGE)
    for width in (1100, PHONE["width"]):
        await a.set_viewport_size({"width": width, "height": 800})
        if problems := await audit(a):
            found[f"list at {width}px"] = problems
    assert not found, "\n".join(f"{where}:\n  " + "\n  ".join(p) for where, p in found.items())
    assert await a.evaluate("window.__csp") == []


async def test_the_navigation_keeps_docs_and_ops_on_one_line(make_user, login, new_context,
                                                             live_site):
    # Staff see every entry: at 1100 px they share one line with the account; at 375 px
    # they fold into the menu.
    staff = await sync_to_async(make_user)(is_staff=True)
    page = await person(new_context, login, staff)
    await page.goto(f"{live_site.http_url}/docs/")
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Docs", "Ops"):
        link = nav.get_by_role("link", name=label, exact=True)
        await expect(link).to_be_visible(timeout=CONVERGE)
        box = await link.bounding_box()
        assert box and box["x"] + box["width"] <= 1100
    tops = await nav.locator("a").evaluate_all(
        "links => new Set(links.map(a => Math.round(a.getBoundingClientRect().top))).size")
    assert tops == 1
    await page.set_viewport_size(PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.get_by_role("button", name="Menu").click()
    await expect(nav.get_by_role("link", name="Docs", exact=True)).to_be_visible()
