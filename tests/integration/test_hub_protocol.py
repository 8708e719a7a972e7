"""Protocol v1 against a real uvicorn server and a real Redis: every frame type and code."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from asgiref.sync import sync_to_async

from taskstream.hub import keys, publish
from taskstream.hub.redis import sync_client
from taskstream.testing import HubClient

pytestmark = pytest.mark.django_db(transaction=True)


async def apub(topic: str, event: str, data: dict[str, Any]) -> str | None:
    # The test's own process publishes like a Celery task would: the sync API, off the loop.
    return await sync_to_async(publish)(topic, event, data)


async def test_welcome_names_the_session_user(connect, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    client = await connect(cookie=cookie)
    assert client.welcome["user"] == user.pk
    assert client.welcome["heartbeat"] > 0
    anonymous = await connect()
    assert anonymous.welcome["user"] is None


async def test_ping_pong_echoes_id(connect):
    client = await connect()
    await client.send({"type": "ping", "id": 7})
    assert await client.expect("pong") == {"type": "pong", "id": 7}


async def test_live_events_arrive_in_publish_order(connect, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    client = await connect(cookie=await sync_to_async(session_cookie)(user))
    subscribed = await client.subscribe(f"user:{user.pk}", id=1)
    assert subscribed["id"] == 1 and subscribed["topic"] == f"user:{user.pk}"
    cursors = [await apub(f"user:{user.pk}", "note.created", {"n": i}) for i in range(20)]
    events = await client.events(20)
    assert [e["data"]["n"] for e in events] == list(range(20))
    assert [e["cursor"] for e in events] == cursors
    assert all(e["event"] == "note.created" and e["topic"] == f"user:{user.pk}" for e in events)
    assert events[0]["ts"].endswith("Z")


async def test_replay_after_drop_is_exactly_once_and_in_order(connect, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    topic = f"user:{user.pk}"
    client = await connect(cookie=cookie)
    await client.subscribe(topic)
    for i in range(5):
        await apub(topic, "tick", {"n": i})
    seen = await client.events(5)
    await client.close()
    for i in range(5, 105):  # published while the browser is away
        await apub(topic, "tick", {"n": i})
    again = await connect(cookie=cookie)
    subscribed = await again.subscribe(topic, since=seen[-1]["cursor"])
    replayed = await again.events(100)
    assert [e["data"]["n"] for e in replayed] == list(range(5, 105))
    assert subscribed["cursor"] == replayed[-1]["cursor"]
    await apub(topic, "tick", {"n": 105})
    live = await again.expect("event")
    assert live["data"]["n"] == 105  # no duplicate, no gap between replay and live
    await again.send({"type": "ping"})
    assert (await again.recv())["type"] == "pong"


async def test_subscribe_since_latest_cursor_replays_nothing(connect, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    topic = f"user:{user.pk}"
    client = await connect(cookie=await sync_to_async(session_cookie)(user))
    first = await client.subscribe(topic)
    assert first["cursor"].endswith("-0-0")  # an empty topic
    await client.send({"type": "unsubscribe", "topic": topic, "id": 3})
    assert await client.expect("unsubscribed") == {"type": "unsubscribed", "topic": topic, "id": 3}
    await apub(topic, "tick", {"n": 1})  # not delivered: unsubscribed
    again = await client.subscribe(topic, since=first["cursor"])
    event = await client.expect("event")  # the one published while unsubscribed
    assert event["data"] == {"n": 1} and again["cursor"] == event["cursor"]
    await client.send({"type": "ping"})
    assert (await client.recv())["type"] == "pong"


async def test_gap_when_history_was_trimmed(start_server, make_user, session_cookie):
    server = start_server(TASKSTREAM_JSON=json.dumps({"LOG_MAXLEN": 5}))
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    topic = f"user:{user.pk}"
    client = await HubClient.connect(server.ws_url, cookie=cookie)
    await client.subscribe(topic)
    await apub(topic, "tick", {"n": 0})
    first = await client.expect("event")
    await client.close()
    # Redis trims whole nodes: publish well past the window from a publisher using it too.
    from django.conf import settings
    from django.test import override_settings

    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "LOG_MAXLEN": 5}):
        for i in range(1, 400):
            await apub(topic, "tick", {"n": i})
    again = await HubClient.connect(server.ws_url, cookie=cookie)
    subscribed = await again.subscribe(topic, since=first["cursor"])
    gap = await again.expect("gap")
    assert gap == {"type": "gap", "topic": topic, "cursor": subscribed["cursor"]}
    await apub(topic, "tick", {"n": 400})
    assert (await again.expect("event"))["data"]["n"] == 400
    await again.close()


async def test_cursor_from_another_epoch_is_a_gap(connect, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    topic = f"user:{user.pk}"
    client = await connect(cookie=await sync_to_async(session_cookie)(user))
    await apub(topic, "tick", {"n": 0})
    subscribed = await client.subscribe(topic, since="0123abcd-1-0")
    assert (await client.expect("gap"))["cursor"] == subscribed["cursor"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"no": "type"}', "unknown_type"),
        ('{"type": "subscribe"}', "bad_frame"),
        ('{"type": "subscribe", "topic": 5}', "bad_frame"),
        ('{"type": "subscribe", "topic": "nope:1"}', "unknown_topic"),
        ('{"type": "subscribe", "topic": "user:abc"}', "unknown_topic"),
        ('{"type": "subscribe", "topic": "ops:x"}', "unknown_topic"),
        ('{"type": "subscribe", "topic": "user:1", "since": "garbage"}', "bad_frame"),
        ('{"type": "subscribe", "topic": "user:1"}', "forbidden"),
        ('{"type": "subscribe", "topic": "ops"}', "forbidden"),
        ('{"type": "publish", "topic": "user:1", "event": "x", "data": {}}', "not_allowed"),
        ('{"type": "publish", "topic": "user:1", "event": "BAD EVENT"}', "bad_frame"),
        ('{"type": "auth", "token": "forged"}', "unauthenticated"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(connect, frame, code):
    client = await connect()
    await client.send(frame)
    error = await client.expect("error")
    assert error["code"] == code and error["message"]
    await client.send({"type": "ping", "id": 1})
    assert await client.expect("pong") == {"type": "pong", "id": 1}


async def test_error_echoes_the_request_id(connect):
    client = await connect()
    await client.send({"type": "subscribe", "topic": "nope:1", "id": "abc"})
    assert (await client.expect("error"))["id"] == "abc"


async def test_someone_elses_user_topic_is_forbidden(connect, make_user, session_cookie):
    alice, bob = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    client = await connect(cookie=await sync_to_async(session_cookie)(alice))
    await client.send({"type": "subscribe", "topic": f"user:{bob.pk}", "id": 1})
    assert (await client.expect("error"))["code"] == "forbidden"
    await apub(f"user:{bob.pk}", "secret", {"x": 1})
    await client.send({"type": "ping"})
    assert (await client.recv())["type"] == "pong"  # and nothing of bob's leaked


async def test_ops_topic_is_for_staff(connect, make_user, session_cookie):
    staff = await sync_to_async(make_user)(is_staff=True)
    client = await connect(cookie=await sync_to_async(session_cookie)(staff))
    await client.subscribe("ops")
    await apub("ops", "worker.online", {"host": "w1"})
    assert (await client.expect("event"))["data"] == {"host": "w1"}


def _post(url: str, cookie: str = "", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method="POST", data=b"",
                                     headers={"Cookie": cookie, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_token_from_http_authenticates_a_cookieless_socket(hub_server, make_user,
                                                                 session_cookie):
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    url = f"{hub_server.http_url}/api/ws-token/"
    status, body = await sync_to_async(_post)(url, cookie)
    assert status == 403  # a session without the CSRF token may not mint tokens
    assert json.loads(body)["code"] == "csrf_failed"
    csrf = "a" * 32
    status, body = await sync_to_async(_post)(url, f"csrftoken={csrf}", {"X-CSRFToken": csrf})
    assert status == 401 and json.loads(body)["code"] == "unauthenticated"
    status, body = await sync_to_async(_post)(
        url, f"{cookie}; csrftoken={csrf}", {"X-CSRFToken": csrf})
    assert status == 200 and body["expires_in"] > 0
    client = await HubClient.connect(hub_server.ws_url, origin=None)  # a non-browser client
    assert client.welcome["user"] is None
    await client.send({"type": "auth", "token": body["token"]})
    assert (await client.expect("welcome"))["user"] == user.pk
    await client.subscribe(f"user:{user.pk}")
    await client.close()


async def test_foreign_origin_is_refused_at_handshake(hub_server):
    with pytest.raises(websockets.InvalidStatus) as info:
        await HubClient.connect(hub_server.ws_url, origin="http://evil.example")
    assert info.value.response.status_code == 403


async def test_session_cookie_is_ignored_without_origin(hub_server, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    client = await HubClient.connect(hub_server.ws_url, origin=None, cookie=cookie)
    assert client.welcome["user"] is None
    await client.close()


async def test_oversize_frame_closes_with_1009(connect):
    client = await connect()
    await client.send({"type": "ping", "pad": "x" * 70_000})
    with pytest.raises(websockets.ConnectionClosed) as info:
        await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_flood_is_rate_limited_then_closed_4429(connect):
    client = await connect()
    for _ in range(200):
        await client.send({"type": "ping"})
    codes = []
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            frame = await client.recv()
            codes.append(frame.get("code", frame["type"]))
    assert "rate_limited" in codes and codes.count("pong") <= 61
    assert info.value.rcvd is not None and info.value.rcvd.code == 4429


async def test_binary_flood_is_rate_limited_then_closed_4429(connect):
    # Binary frames are refused (bad_frame), but each one counts against the rate limit.
    client = await connect()
    for _ in range(200):
        await client.ws.send(b"\x00" * 16)
    codes = []
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            codes.append((await client.recv())["code"])
    assert "rate_limited" in codes and codes.count("bad_frame") <= 61
    assert info.value.rcvd is not None and info.value.rcvd.code == 4429


async def test_ten_thousand_subscribe_attempts_do_not_hurt_others(connect, make_user,
                                                                  session_cookie):
    user = await sync_to_async(make_user)()
    topic = f"user:{user.pk}"
    bystander = await connect(cookie=await sync_to_async(session_cookie)(user))
    await bystander.subscribe(topic)
    attacker = await connect()
    with pytest.raises(websockets.ConnectionClosed):
        for i in range(10_000):
            await attacker.send({"type": "subscribe", "topic": f"user:{i}"})
        while True:
            await attacker.recv()
    await apub(topic, "still.here", {})
    assert (await bystander.expect("event"))["event"] == "still.here"


async def test_subscription_limit_per_socket(start_server, make_user, session_cookie):
    server = start_server(TASKSTREAM_JSON=json.dumps({"MAX_SUBSCRIPTIONS": 2}))
    staff = await sync_to_async(make_user)(is_staff=True)
    cookie = await sync_to_async(session_cookie)(staff)
    client = await HubClient.connect(server.ws_url, cookie=cookie)
    await client.subscribe("ops")
    await client.subscribe(f"user:{staff.pk}")
    await client.send({"type": "subscribe", "topic": "user:999999"})
    assert (await client.expect("error"))["code"] == "not_allowed"
    await client.close()


async def test_connections_per_user_are_limited(start_server, make_user, session_cookie):
    server = start_server(TASKSTREAM_JSON=json.dumps({"MAX_CONNECTIONS_PER_USER": 2}))
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    first = await HubClient.connect(server.ws_url, cookie=cookie)
    second = await HubClient.connect(server.ws_url, cookie=cookie)
    # A refused socket is told why: its own error code and close code, not "rate limited".
    refused = await websockets.connect(server.ws_url, origin=server.http_url,
                                       additional_headers={"Cookie": cookie})
    error = json.loads(await refused.recv())
    assert (error["type"], error["code"]) == ("error", "too_many_connections")
    assert "connections" in error["message"]
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await refused.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4430, "too many connections")
    await first.close()
    third = None
    for _ in range(50):  # the server counts the close once it has processed it
        try:
            third = await HubClient.connect(server.ws_url, cookie=cookie)
            break
        except AssertionError:
            await asyncio.sleep(0.05)
    assert third is not None
    assert third.welcome["user"] == user.pk
    anonymous = [await HubClient.connect(server.ws_url) for _ in range(3)]  # not limited
    for client in (second, third, *anonymous):
        await client.close()


@pytest.mark.parametrize("sid", ["99999999999999999999-0", "1-99999999999999999999",
                                 "18446744073709551615-18446744073709551615"])
async def test_cursor_redis_would_refuse_is_a_bad_frame(connect, make_user, session_cookie, sid):
    # Well-formed, but not a stream id Redis reads after: a clear bad_frame, not `unavailable`.
    user = await sync_to_async(make_user)()
    topic = f"user:{user.pk}"
    client = await connect(cookie=await sync_to_async(session_cookie)(user))
    await client.send({"type": "subscribe", "topic": topic, "since": f"0123abcd-{sid}", "id": 1})
    error = await client.expect("error")
    assert error["code"] == "bad_frame" and error["id"] == 1
    await client.subscribe(topic)
    await apub(topic, "after", {})
    assert (await client.expect("event"))["event"] == "after"


async def test_a_failed_subscribe_leaves_no_subscription_behind(start_server, make_user,
                                                                session_cookie):
    server = start_server(TASKSTREAM_JSON=json.dumps({"MAX_SUBSCRIPTIONS": 1}))
    staff = await sync_to_async(make_user)(is_staff=True)
    topic = f"user:{staff.pk}"
    client = await HubClient.connect(server.ws_url,
                                     cookie=await sync_to_async(session_cookie)(staff))
    # A log Redis cannot read as a stream: the subscribe's replay fails on the server.
    sync_client().set(keys.log_key(topic), "not a stream")
    try:
        await client.send({"type": "subscribe", "topic": topic, "id": 1})
        assert (await client.expect("error"))["code"] == "unavailable"
    finally:
        sync_client().delete(keys.log_key(topic))
    # Nothing of it is left: it does not take the one subscription this socket may hold,
    # and a new subscription gets live events.
    await client.subscribe("ops")
    await apub("ops", "live", {})
    assert (await client.expect("event"))["event"] == "live"
    await client.close()


async def test_other_websocket_paths_are_refused(hub_server):
    with pytest.raises(websockets.InvalidStatus) as info:
        await HubClient.connect(hub_server.ws_url.replace("/ws/", "/ws/other/"))
    assert info.value.response.status_code == 403
