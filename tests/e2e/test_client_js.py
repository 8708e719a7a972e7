"""client.js behaviours a page relies on, driven in Chromium against a real server.

The harness imports the module into a same-origin document and records every callback
in ``window.log``. Where the real server never misbehaves (duplicates, gaps on demand),
Playwright's WebSocket routing sits between page and server and alters the wire.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import Page, WebSocketRoute

from taskstream.hub import apublish
from taskstream.testing import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
]

WS_PATTERN = re.compile(r"/ws/$")

# Builds a Hub and subscribes `topics`; with `holdGaps`, onGap returns a promise that
# the test settles with `window.releaseGap()` (the "refetch").
HARNESS = """
async ({ topics, holdGaps = false, options = {}, since = null }) => {
  const mod = await import("/static/taskstream/client.js");
  window.log = [];
  const hub = new mod.Hub(options);
  window.hub = hub;
  hub.on("state", (state, detail) => log.push(["state", state, detail.code ?? null]));
  hub.on("frame", (f) => {
    if (f.type === "event") log.push(["wire", f.topic, f.cursor]);
    if (f.type === "error") log.push(["wire-error", f.code]);
  });
  for (const topic of topics) {
    hub.subscribe(topic, {
      since,
      onSubscribed: (f) => log.push(["subscribed", f.topic, f.cursor]),
      onEvent: (f) => log.push(["event", f.topic, f.cursor, f.data]),
      onError: (f) => log.push(["error", topic, f.code]),
      onGap: (f) => {
        log.push(["gap", f.topic]);
        if (!holdGaps) return undefined;
        return new Promise((resolve) => {
          window.releaseGap = () => { log.push(["refetched", f.topic]); resolve(); };
        });
      },
    });
  }
}
"""


async def start_harness(page: Page, site: ServerProcess, topics: list[str], **kwargs: Any,
                        ) -> None:
    # Any same-origin document will do: the module itself.
    await page.goto(f"{site.http_url}/static/taskstream/client.js")
    await page.evaluate(HARNESS, {"topics": topics, **kwargs})


async def wait_log(page: Page, kind: str, count: int, timeout: float = 10_000) -> list[Any]:
    await page.wait_for_function(
        "([kind, n]) => window.log.filter((e) => e[0] === kind).length >= n",
        arg=[kind, count], timeout=timeout)
    entries: list[Any] = await page.evaluate(
        "kind => window.log.filter((e) => e[0] === kind)", kind)
    return entries


async def signed_in_user(make_user, login, context, site) -> tuple[Any, str]:
    user = await sync_to_async(make_user)()
    await login(context, user, site)
    return user, f"user:{user.pk}"


async def test_events_repeated_on_the_wire_are_delivered_once(make_user, login, context,
                                                              page, live_site):
    _, topic = await signed_in_user(make_user, login, context, live_site)

    async def repeat_events(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            ws.send(message)
            if isinstance(message, str) and '"type":"event"' in message:
                ws.send(message)

        server.on_message(to_page)

    await page.route_web_socket(WS_PATTERN, repeat_events)
    # Playwright routes the page's own sockets, not a SharedWorker's.
    await start_harness(page, live_site, [topic], options={"shared": "page"})
    await wait_log(page, "subscribed", 1)
    cursors = [await apublish(topic, "tick", {"n": n}) for n in range(5)]
    await wait_log(page, "event", 5)
    # A marker event: anything duplicated would have been delivered before it.
    cursors.append(await apublish(topic, "tick", {"n": 5}))
    assert len(await wait_log(page, "wire", 12)) == 12  # each event came twice
    events = await wait_log(page, "event", 6)
    assert [e[3]["n"] for e in events] == list(range(6))
    assert [e[2] for e in events] == cursors


async def test_gap_handler_promise_holds_later_events_until_it_settles(make_user, login,
                                                                       context, page,
                                                                       live_site):
    _, topic = await signed_in_user(make_user, login, context, live_site)

    async def inject_gap(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            ws.send(message)
            if isinstance(message, str) and '"type":"subscribed"' in message:
                frame = json.loads(message)
                ws.send(json.dumps({"type": "gap", "topic": frame["topic"],
                                    "cursor": frame["cursor"]}))

        server.on_message(to_page)

    await page.route_web_socket(WS_PATTERN, inject_gap)
    await start_harness(page, live_site, [topic], holdGaps=True, options={"shared": "page"})
    await wait_log(page, "gap", 1)
    await apublish(topic, "tick", {"n": 1})
    await apublish(topic, "tick", {"n": 2})
    # Both events have reached the page, but wait for the "refetch".
    await wait_log(page, "wire", 2)
    assert await page.evaluate("window.log.filter((e) => e[0] === 'event').length") == 0
    await page.evaluate("window.releaseGap()")
    await wait_log(page, "event", 2)
    kinds = await page.evaluate(
        "window.log.filter((e) => !['state', 'wire'].includes(e[0])).map((e) => e[0])")
    assert kinds == ["subscribed", "gap", "refetched", "event", "event"]


async def test_many_subscriptions_are_paced_under_the_rate_limit(make_user, login, context,
                                                                 page, live_site):
    user, topic = await signed_in_user(make_user, login, context, live_site)
    # 70 subscribes at once would exceed the server's burst of 60 frames; the client paces
    # them. The foreign topics are refused (forbidden), never rate-limited.
    foreign = [f"user:{user.pk + 1000 + i}" for i in range(69)]
    await start_harness(page, live_site, [topic, *foreign])
    errors = await wait_log(page, "error", 69, timeout=20_000)
    assert {e[2] for e in errors} == {"forbidden"}
    assert {e[1] for e in errors} == set(foreign)
    assert await page.evaluate("window.log.filter((e) => e[1] === 'rate_limited')") == []
    await wait_log(page, "subscribed", 1)
    await apublish(topic, "tick", {"n": 1})
    await wait_log(page, "event", 1)
    states = await page.evaluate("window.log.filter((e) => e[0] === 'state')")
    assert states == [["state", "open", None]]


async def test_publish_is_rejected_with_the_server_error_code(make_user, login, context, page,
                                                              live_site):
    _, topic = await signed_in_user(make_user, login, context, live_site)
    await start_harness(page, live_site, [topic])
    await wait_log(page, "subscribed", 1)
    outcome = await page.evaluate(
        """topic => hub.publish(topic, "note.created", {text: "hi"}).then(
             () => "published", (e) => [e.name, e.code])""", topic)
    assert outcome == ["HubError", "not_allowed"]


async def test_a_subscription_the_server_takes_back_reaches_on_error(make_user, login,
                                                                     context, page,
                                                                     live_site):
    from taskstream.rooms.services import room_create, room_member_remove

    user, _ = await signed_in_user(make_user, login, context, live_site)
    owner = await sync_to_async(make_user)()
    room = await sync_to_async(room_create)(slug=f"taken-{user.pk}", name="Taken",
                                            creator=owner, is_private=True, members=[user])
    await start_harness(page, live_site, [room.topic])
    await wait_log(page, "subscribed", 1)
    await sync_to_async(room_member_remove)(room=room, by=owner, username=user.username)
    assert await wait_log(page, "error", 1) == [["error", room.topic, "forbidden"]]


async def test_token_auth_frame_signs_in_a_cookieless_socket(start_server, make_user, context,
                                                             page, session_cookie):
    # The page is on http://localhost:PORT; its socket goes to 127.0.0.1:PORT, another
    # origin, where the session cookie does not go: only the `auth` frame can sign it in.
    server = start_server(TASKSTREAM_JSON=json.dumps({"ALLOWED_ORIGINS": ["*"]}))
    try:
        user = await sync_to_async(make_user)()
        name, _, value = (await sync_to_async(session_cookie)(user)).partition("=")
        page_origin = f"http://localhost:{server.port}"
        await context.add_cookies([{"name": name, "value": value, "url": page_origin}])
        await page.goto(f"{page_origin}/live/")  # sets the CSRF cookie ws-token needs
        # A document without the site's CSP (connect-src 'self' forbids the other origin).
        await page.goto(f"{page_origin}/static/taskstream/client.js")
        socket_url = f"ws://127.0.0.1:{server.port}/ws/"
        users = await page.evaluate(
            """async (url) => {
                 const { Hub, apiToken } = await import("/static/taskstream/client.js");
                 const welcomed = (hub) => new Promise((resolve) => hub.on("state", (s) => {
                   if (s === "open") resolve(hub.user);
                 }));
                 const anonymous = new Hub({ url });
                 const signedIn = new Hub({ url, token: apiToken() });
                 // Both listeners before either await: either may open first.
                 const result = await Promise.all([welcomed(anonymous), welcomed(signedIn)]);
                 anonymous.close();
                 window.hub = signedIn;
                 return result;
               }""", socket_url)
        assert users == [None, user.pk]
        await page.evaluate(
            """topic => { window.log = []; hub.subscribe(topic, {
                 onSubscribed: (f) => log.push(["subscribed", f.topic, f.cursor]),
                 onEvent: (f) => log.push(["event", f.topic, f.cursor, f.data]),
                 onError: (f) => log.push(["error", topic, f.code]) }); }""", f"user:{user.pk}")
        await wait_log(page, "subscribed", 1)
        await apublish(f"user:{user.pk}", "tick", {"n": 1})
        assert (await wait_log(page, "event", 1))[0][3] == {"n": 1}
        assert await page.evaluate("window.log.filter((e) => e[0] === 'error')") == []
    finally:
        server.stop()


async def test_type_declarations_ship_beside_the_module_and_name_every_export(page, live_site):
    response = await page.request.get(f"{live_site.http_url}/static/taskstream/client.d.ts")
    assert response.status == 200
    declared = re.findall(r"^export declare (?:const|class|function) (\w+)",
                          await response.text(), re.MULTILINE)
    await page.goto(f"{live_site.http_url}/static/taskstream/client.js")
    exported = await page.evaluate(
        "import('/static/taskstream/client.js').then((m) => Object.keys(m))")
    assert sorted(declared) == sorted(exported)


# The Hubs of two tabs below share the browser's one socket (a SharedWorker): the second
# joins a topic the socket already reads, from a cursor of its own.


async def open_tab(context, site: ServerProcess, topics: list[str], **kwargs: Any) -> Page:
    tab = await context.new_page()
    await start_harness(tab, site, topics, **kwargs)
    return tab


async def test_a_hub_joining_the_shared_socket_late_catches_up_from_its_own_cursor(
        make_user, login, context, page, live_site):
    _, topic = await signed_in_user(make_user, login, context, live_site)
    await start_harness(page, live_site, [topic])
    await wait_log(page, "subscribed", 1)
    cursors = [await apublish(topic, "tick", {"n": n}) for n in range(4)]
    await wait_log(page, "event", 4)
    late = await open_tab(context, live_site, [topic], since=cursors[1])
    assert await late.evaluate("hub.sharing") == "worker"
    # From the events the shared connection keeps: after its cursor, once, in order.
    assert [e[3]["n"] for e in await wait_log(late, "event", 2)] == [2, 3]
    await apublish(topic, "tick", {"n": 4})
    assert [e[3]["n"] for e in await wait_log(late, "event", 3)] == [2, 3, 4]
    assert [e[3]["n"] for e in await wait_log(page, "event", 5)] == [0, 1, 2, 3, 4]
    assert await late.evaluate("window.log.filter((e) => e[0] === 'gap')") == []


async def test_a_cursor_older_than_the_shared_socket_knows_is_a_gap_never_a_hole(
        make_user, login, context, page, live_site):
    _, topic = await signed_in_user(make_user, login, context, live_site)
    old = await apublish(topic, "tick", {"n": -2})
    await apublish(topic, "tick", {"n": -1})  # the shared socket starts after this one
    await start_harness(page, live_site, [topic])
    await wait_log(page, "subscribed", 1)
    late = await open_tab(context, live_site, [topic], since=old)
    # -1 happened before the socket read the topic: it cannot replay it, so it says so.
    assert len(await wait_log(late, "gap", 1)) == 1
    await apublish(topic, "tick", {"n": 0})
    assert [e[3]["n"] for e in await wait_log(late, "event", 1)] == [0]
    assert [e[3]["n"] for e in await wait_log(page, "event", 1)] == [0]


async def test_a_cursor_the_server_refuses_turns_into_a_gap_and_a_fresh_subscription(
        make_user, login, context, page, live_site):
    _, topic = await signed_in_user(make_user, login, context, live_site)
    await start_harness(page, live_site, [topic], since="0-0-0")  # not from this server
    assert await wait_log(page, "gap", 1) == [["gap", topic]]
    await wait_log(page, "subscribed", 1)
    cursor = await apublish(topic, "tick", {"n": 1})
    assert (await wait_log(page, "event", 1))[0][2:] == [cursor, {"n": 1}]
