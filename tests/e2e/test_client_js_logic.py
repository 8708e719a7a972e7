"""client.js state machine against a scripted socket: resume points, backoff, auth, heartbeats.

The module runs in Chromium with ``options.WebSocket`` replaced by ``FakeSocket``, which
records what the client sends and lets the test play the server frame by frame. The
real server only serves the module. Only what a real hub cannot be made to do on cue is
here (silence, timing, backoff, refusals); resume, catch-up, gaps, refused cursors,
forbidden topics and publish errors run against the real hub in test_client_js.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from taskstream.testing import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
]

FAKE = """
async () => {
  window.ts = await import("/static/taskstream/client.js");
  class FakeSocket {
    static all = [];
    constructor(url) {
      this.url = url; this.sent = []; this.closed = null; FakeSocket.all.push(this);
    }
    send(data) { this.sent.push(JSON.parse(data)); }
    close(code) { this.closed = code ?? 1000; }
    frame(f) { this.onmessage?.({ data: JSON.stringify(f) }); }
    welcome(extra = {}) { this.frame({ type: "welcome", user: 1, heartbeat: 20, ...extra }); }
    drop(code = 1006, reason = "") { this.onclose?.({ code, reason }); }
    ofType(type) { return this.sent.filter((f) => f.type === type); }
  }
  window.FakeSocket = FakeSocket;
  window.sock = () => FakeSocket.all[FakeSocket.all.length - 1];
  window.nextSocket = async (n) => {
    while (FakeSocket.all.length < n) await new Promise((r) => setTimeout(r, 5));
    return FakeSocket.all[n - 1];
  };
  window.log = [];
  window.makeHub = (options = {}) => {
    const hub = new ts.Hub({ WebSocket: FakeSocket, url: "ws://fake/ws/", ...options });
    hub.on("state", (state, d) => log.push({ state, delay: d.delay, code: d.code,
                                             reason: d.reason }));
    return hub;
  };
  window.record = (hub, topic, extra = {}) => hub.subscribe(topic, {
    onSubscribed: (f) => log.push({ subscribed: f.topic }),
    onEvent: (f) => log.push({ event: f.cursor ?? null }),
    onGap: (f) => log.push({ gap: f.cursor }),
    onError: (f) => log.push({ error: f.code }),
    ...extra,
  });
}
"""


@pytest_asyncio.fixture(loop_scope="session")
async def fake(page: Page, live_site: ServerProcess) -> Page:
    await page.goto(f"{live_site.http_url}/static/taskstream/client.js")
    await page.evaluate(FAKE)
    return page


async def run(page: Page, body: str) -> Any:
    """Evaluate an async function body with the fake harness in scope."""
    return await page.evaluate(f"async () => {{ {body} }}")


async def test_resubscribes_from_the_last_event_cursor(fake):
    sent = await run(fake, """
        const hub = makeHub();
        record(hub, "user:1");
        const s1 = sock(); s1.welcome();
        const sub = s1.ofType("subscribe")[0];
        s1.frame({ type: "subscribed", topic: "user:1", cursor: "e-1-0", id: sub.id });
        s1.frame({ type: "event", topic: "user:1", cursor: "e-2-0", event: "x", data: {} });
        s1.frame({ type: "event", topic: "user:1", event: "typing", data: {} });  // ephemeral
        s1.drop(1012);
        const s2 = await nextSocket(2); s2.welcome();
        return s2.ofType("subscribe");
    """)
    assert [(f["topic"], f.get("since")) for f in sent] == [("user:1", "e-2-0")]


async def test_resumes_from_the_subscribed_cursor_before_any_event(fake):
    sent = await run(fake, """
        const hub = makeHub();
        record(hub, "user:1");
        const s1 = sock(); s1.welcome();
        s1.frame({ type: "subscribed", topic: "user:1", cursor: "e-7-0",
                   id: s1.ofType("subscribe")[0].id });
        s1.drop();
        const s2 = await nextSocket(2); s2.welcome();
        const again = s2.ofType("subscribe")[0];
        // A gap moves the resume point to the gap's cursor.
        s2.frame({ type: "subscribed", topic: "user:1", cursor: "e-9-0", id: again.id });
        s2.frame({ type: "gap", topic: "user:1", cursor: "e-9-0" });
        s2.drop();
        const s3 = await nextSocket(3); s3.welcome();
        return [again.since, s3.ofType("subscribe")[0].since];
    """)
    assert sent == ["e-7-0", "e-9-0"]


async def test_subscribe_with_since_keeps_it_until_events_arrive(fake):
    sent = await run(fake, """
        const hub = makeHub();
        record(hub, "job:abc");
        hub.subscribe("user:1", { since: "e-3-0" });
        const s1 = sock(); s1.welcome();
        const sub = s1.ofType("subscribe").find((f) => f.topic === "user:1");
        // The replay has not arrived yet: the subscribed cursor is not a resume point.
        s1.frame({ type: "subscribed", topic: "user:1", cursor: "e-9-0", id: sub.id });
        s1.drop();
        const s2 = await nextSocket(2); s2.welcome();
        return s2.ofType("subscribe").map((f) => [f.topic, f.since ?? null]);
    """)
    assert sorted(sent) == [["job:abc", None], ["user:1", "e-3-0"]]


async def test_backoff_is_jittered_capped_and_hard_after_4401(fake):
    log = await run(fake, """
        const hub = makeHub({ backoff: { base: 10, cap: 40, hardCap: 400 } });
        for (let n = 1; n <= 6; n++) (await nextSocket(n)).drop(1006);
        (await nextSocket(7)).welcome();
        sock().drop(4401);
        hub.close();
        return log;
    """)
    reconnecting = [e for e in log if e["state"] == "reconnecting"]
    delays = [e["delay"] for e in reconnecting]
    assert len(delays) == 7
    for attempt, delay in enumerate(delays[:6]):
        assert 0 <= delay <= min(40, 10 * 2**attempt)
    assert reconnecting[-1]["code"] == 4401
    assert 200 <= delays[-1] <= 400
    assert [e["state"] for e in log][-3:] == ["open", "reconnecting", "closed"]


async def test_a_draining_server_1012_brings_it_back_soon_with_jitter(fake):
    """A process that drains (SIGTERM) closes with 1012: not a failure, so no backoff step;
    the delay is drawn from [0, restartJitter] (full jitter) however long the backoff was."""
    log = await run(fake, """
        const hub = makeHub({ backoff: { base: 5000, cap: 60000 }, restartJitter: 80 });
        (await nextSocket(1)).welcome();
        for (let n = 1; n <= 12; n++) {
          sock().drop(1012);
          (await nextSocket(n + 1)).welcome();
        }
        hub.close();
        return log;
    """)
    reconnecting = [e for e in log if e["state"] == "reconnecting"]
    assert len(reconnecting) == 12 and {e["code"] for e in reconnecting} == {1012}
    delays = [e["delay"] for e in reconnecting]
    assert all(0 <= d <= 80 for d in delays), delays
    assert len({round(d, 3) for d in delays}) > 1  # jittered, not a fixed pause


async def test_token_auth_goes_first_and_a_refusal_backs_off_hard(fake):
    result = await run(fake, """
        const hub = makeHub({ token: async () => "t0k3n", backoff: { hardCap: 60000 } });
        record(hub, "user:1");
        const s1 = sock(); s1.welcome({ user: null });
        await new Promise((r) => setTimeout(r, 20));
        const before = s1.sent.map((f) => f.type);
        const auth = s1.ofType("auth")[0];
        s1.welcome({ user: 5 });
        const after = s1.sent.map((f) => f.type);
        const s2user = hub.user;
        // Second connection: the token is refused.
        s1.drop(1012);
        const s2 = await nextSocket(2); s2.welcome({ user: null });
        await new Promise((r) => setTimeout(r, 20));
        s2.frame({ type: "error", code: "unauthenticated", message: "expired",
                   id: s2.ofType("auth")[0].id });
        const last = log[log.length - 1];
        hub.close();
        return { before, auth, after, s2user, last, s2closed: s2.closed };
    """)
    assert result["before"] == ["auth"]
    assert result["auth"]["token"] == "t0k3n"
    assert result["after"] == ["auth", "subscribe"]
    assert result["s2user"] == 5
    assert result["last"]["state"] == "reconnecting"
    assert result["last"]["reason"] == "unauthenticated"
    assert result["last"]["delay"] >= 30000
    assert result["s2closed"] is not None


async def test_silent_connection_is_dropped_after_two_heartbeats(fake):
    result = await run(fake, """
        const hub = makeHub();
        const s1 = sock(); s1.welcome({ heartbeat: 0.1 });
        await nextSocket(2);  // a new connection: the first was declared dead
        const pings = s1.ofType("ping").length;
        const reason = log.find((e) => e.state === "reconnecting").reason;
        hub.close();
        return { pings, reason, closed: s1.closed };
    """)
    assert result["reason"] == "heartbeat timeout"
    assert result["pings"] >= 1
    assert result["closed"] is not None


async def test_answered_pings_keep_the_connection(fake):
    result = await run(fake, """
        const hub = makeHub();
        const s1 = sock(); s1.welcome({ heartbeat: 0.1 });
        const answer = setInterval(() => s1.frame({ type: "pong" }), 20);
        await new Promise((r) => setTimeout(r, 500));
        clearInterval(answer);
        const state = hub.state, sockets = FakeSocket.all.length, pings = s1.ofType("ping").length;
        hub.close();
        return { state, sockets, pings };
    """)
    assert result["state"] == "open"
    assert result["sockets"] == 1
    assert result["pings"] >= 2


async def test_publish_waits_for_the_connection_and_settles_by_id(fake):
    result = await run(fake, """
        const hub = makeHub();
        const ok = hub.publish("room:a", "message", { body: "hi" });
        const refused = hub.publish("room:a", "message", { body: "" });
        const s1 = sock();
        const sentBeforeWelcome = s1.sent.length;
        s1.welcome();
        const [p1, p2] = s1.ofType("publish");
        s1.frame({ type: "error", code: "bad_frame", message: "empty", id: p2.id });
        s1.frame({ type: "published", topic: "room:a", cursor: "e-1-0", id: p1.id });
        const lost = hub.publish("room:a", "message", { body: "lost" });
        s1.drop(1006);
        const outcomes = await Promise.allSettled([ok, refused, lost]);
        hub.close();
        return { sentBeforeWelcome, outcomes: outcomes.map((o) =>
          o.status === "fulfilled" ? o.value : { code: o.reason.code }) };
    """)
    assert result["sentBeforeWelcome"] == 0
    assert result["outcomes"] == [{"topic": "room:a", "cursor": "e-1-0"}, {"code": "bad_frame"},
                                  {"code": "disconnected"}]


async def test_publish_times_out(fake):
    code = await run(fake, """
        const hub = makeHub();
        sock().welcome();
        const code = await hub.publish("room:a", "message", {}, { timeout: 50 })
          .then(() => "published", (e) => e.code);
        hub.close();
        return code;
    """)
    assert code == "timeout"


async def test_subscribe_errors_retry_or_surface_by_code(fake):
    result = await run(fake, """
        const hub = makeHub();
        record(hub, "user:1");
        record(hub, "user:2");
        record(hub, "user:3", { since: "old-1-0" });
        const s1 = sock(); s1.welcome();
        const by = (t) => s1.ofType("subscribe").filter((f) => f.topic === t);
        s1.frame({ type: "error", code: "rate_limited", message: "", id: by("user:1")[0].id });
        s1.frame({ type: "error", code: "forbidden", message: "", id: by("user:2")[0].id });
        s1.frame({ type: "error", code: "bad_frame", message: "since", id: by("user:3")[0].id });
        const fresh = by("user:3")[1];
        while (by("user:1").length < 2) await new Promise((r) => setTimeout(r, 50));
        hub.close();
        return { log, retried: by("user:1").length, user2: by("user:2").length,
                 fresh: fresh && (fresh.since ?? null) };
    """)
    assert result["retried"] == 2  # rate_limited: asked again after a pause
    assert result["user2"] == 1  # forbidden: not retried on this connection
    assert {"error": "forbidden"} in result["log"]
    assert {"gap": None} in result["log"]  # an unknown cursor is reported as a gap
    assert result["fresh"] is None


async def test_closing_the_last_subscription_unsubscribes(fake):
    result = await run(fake, """
        const hub = makeHub();
        const a = record(hub, "user:1");
        const b = record(hub, "user:1");
        const s1 = sock(); s1.welcome();
        const subscribes = s1.ofType("subscribe").length;
        a.close();
        const afterFirst = s1.ofType("unsubscribe").length;
        b.close();
        s1.frame({ type: "event", topic: "user:1", cursor: "e-5-0", event: "x", data: {} });
        hub.close();
        return { subscribes, afterFirst, unsubscribes: s1.ofType("unsubscribe").length,
                 events: log.filter((e) => "event" in e).length };
    """)
    assert result == {"subscribes": 1, "afterFirst": 0, "unsubscribes": 1, "events": 0}


async def test_second_subscriber_since_counts_only_before_the_topic_is_sent(fake):
    result = await run(fake, """
        const hub = makeHub();
        record(hub, "user:1");
        record(hub, "user:1", { since: "e-4-0" });  // both at page load: adopted
        const s1 = sock(); s1.welcome();
        const first = s1.ofType("subscribe");
        record(hub, "user:1", { since: "e-1-0" });  // already sent: ignored
        hub.close();
        return { first: first.map((f) => f.since), later: s1.ofType("subscribe").length };
    """)
    assert result == {"first": ["e-4-0"], "later": 1}
