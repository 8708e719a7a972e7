"""Rooms against a real ASGI server and Redis: history, sending over HTTP and the hub,
validation, access, rate limit, typing."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from taskstream.rooms.models import Message, Room
from taskstream.rooms.services import room_create

pytestmark = pytest.mark.django_db(transaction=True)


def _room(creator: Any, slug: str = "lobby", *, private: bool = False, members: tuple = ()) -> Room:
    return room_create(slug=slug, name=slug.title(), creator=creator, is_private=private,
                       members=list(members))


def _client(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def pair(make_user, session_cookie):
    """Two signed-in users with session cookies, and a public room."""

    async def make(slug: str = "lobby", private: bool = False) -> tuple[Any, ...]:
        alice = await sync_to_async(make_user)("alice")
        bob = await sync_to_async(make_user)("bob")
        room = await sync_to_async(_room)(alice, slug, private=private, members=(bob,))
        cookies = [await sync_to_async(session_cookie)(u) for u in (alice, bob)]
        return alice, bob, room, *cookies

    return make


def test_history_pages_backwards_without_gaps_or_duplicates(make_user):
    alice = make_user()
    room = _room(alice)
    Message.objects.bulk_create(Message(room=room, author=alice, body=f"m{i}") for i in range(120))
    client = _client(alice)
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        query = {"limit": 50} if before is None else {"limit": 50, "before": before}
        page = client.get(f"/api/rooms/{room.slug}/messages/", query).json()
        seen[:0] = [m["body"] for m in page["messages"]]
        pages += 1
        before = page["next_before"]
        if before is None:
            break
    assert pages == 3
    assert seen == [f"m{i}" for i in range(120)]
    first = client.get(f"/api/rooms/{room.slug}/messages/").json()
    assert [m["body"] for m in first["messages"]] == [f"m{i}" for i in range(70, 120)]
    assert first["messages"][0]["author"] == {"id": alice.pk, "username": alice.username}


def test_bad_history_cursor_is_a_422(make_user):
    alice = make_user()
    room = _room(alice)
    response = _client(alice).get(f"/api/rooms/{room.slug}/messages/", {"before": "x"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid"


async def test_message_over_the_hub_is_stored_then_broadcast(connect, pair):
    alice, _bob, room, alice_cookie, bob_cookie = await pair()
    a = await connect(cookie=alice_cookie)
    b = await connect(cookie=bob_cookie)
    await a.subscribe(room.topic)
    await b.subscribe(room.topic)
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "  hello <b>bob</b>  "}, "id": 3})
    for client in (a, b):
        frame = await _next(client, "event", lambda f: f["event"] == "message.created")
        assert frame["data"]["body"] == "hello <b>bob</b>"
        assert frame["data"]["author"]["username"] == "alice"
        assert frame["cursor"]
    stored = await Message.objects.aget(pk=frame["data"]["id"])
    assert stored.body == "hello <b>bob</b>" and stored.author_id == alice.pk


async def test_http_send_needs_csrf_and_reaches_sockets(connect, pair):
    alice, _bob, room, _alice_cookie, bob_cookie = await pair()
    b = await connect(cookie=bob_cookie)
    await b.subscribe(room.topic)
    http = await sync_to_async(_client)(alice, csrf=True)
    url = f"/api/rooms/{room.slug}/messages/"
    refused = await sync_to_async(http.post)(url, {"body": "hi"}, content_type="application/json")
    assert refused.status_code == 403
    assert await Message.objects.filter(room=room).acount() == 0
    token = "k" * 32  # what a page's {% csrf_token %} cookie holds
    http.cookies["csrftoken"] = token
    sent = await sync_to_async(http.post)(url, {"body": "hi"}, content_type="application/json",
                                          headers={"X-CSRFToken": token})
    assert sent.status_code == 201, sent.content
    event = await _next(b, "event", lambda f: f["event"] == "message.created")
    assert event["data"] == {**sent.json(), "created_at": event["data"]["created_at"]}
    assert event["data"]["id"] == sent.json()["id"]


async def test_history_cursor_continues_live_without_loss(connect, pair):
    alice, _bob, room, alice_cookie, _ = await pair()
    http = await sync_to_async(_client)(alice)
    url = f"/api/rooms/{room.slug}/messages/"
    await sync_to_async(http.post)(url, {"body": "before"}, content_type="application/json")
    page = (await sync_to_async(http.get)(url)).json()
    # Sent after the page was read, before the socket subscribed: must not be lost.
    await sync_to_async(http.post)(url, {"body": "between"}, content_type="application/json")
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic, since=page["cursor"])
    event = await _next(a, "event", lambda f: f["event"] == "message.created")
    assert [m["body"] for m in page["messages"]] == ["before"]
    assert event["data"]["body"] == "between"


async def test_private_room_is_closed_to_non_members(connect, make_user, session_cookie):
    owner = await sync_to_async(make_user)("owner")
    outsider = await sync_to_async(make_user)("outsider")
    room = await sync_to_async(_room)(owner, "secret", private=True)
    await Message.objects.acreate(room=room, author=owner, body="classified")
    http = await sync_to_async(_client)(outsider)
    base = f"/api/rooms/{room.slug}"
    for response in (
        await sync_to_async(http.get)(f"{base}/messages/"),
        await sync_to_async(http.post)(f"{base}/messages/", {"body": "let me in"},
                                       content_type="application/json"),
        await sync_to_async(http.get)(f"{base}/presence/"),
    ):
        # The same answer as for a room that does not exist: names cannot be probed.
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    missing = await sync_to_async(http.get)("/api/rooms/no-such-room/messages/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    listed = (await sync_to_async(http.get)("/api/rooms/")).json()
    assert "secret" not in [r["slug"] for r in listed]
    ws = await connect(cookie=await sync_to_async(session_cookie)(outsider))
    await ws.send({"type": "subscribe", "topic": room.topic, "id": 1})
    assert (await _next(ws, "error"))["code"] == "forbidden"
    await ws.send({"type": "publish", "topic": room.topic, "event": "message",
                   "data": {"body": "let me in"}, "id": 2})
    assert (await _next(ws, "error"))["code"] == "forbidden"
    anonymous = await connect()
    await anonymous.send({"type": "subscribe", "topic": room.topic})
    assert (await anonymous.expect("error"))["code"] == "forbidden"
    assert [m.body async for m in Message.objects.filter(room=room)] == ["classified"]


@pytest.mark.parametrize(("body", "ws_code", "status", "http_code"), [
    ("", "bad_frame", 422, "invalid"),
    ("   \n ", "bad_frame", 422, "invalid"),
    (None, "bad_frame", 422, "invalid"),
    (["not", "text"], "bad_frame", 422, "invalid"),
    ("nul\x00byte", "bad_frame", 422, "invalid"),
    ("x" * 4001, "too_large", 413, "too_large"),
])
async def test_empty_and_oversize_messages_are_refused_everywhere(connect, pair, body, ws_code,
                                                                  status, http_code):
    alice, _bob, room, alice_cookie, _ = await pair()
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic)
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": body}, "id": 9})
    error = await _next(a, "error")
    assert (error["code"], error["id"]) == (ws_code, 9)
    http = await sync_to_async(_client)(alice)
    response = await sync_to_async(http.post)(f"/api/rooms/{room.slug}/messages/",
                                               {"body": body}, content_type="application/json")
    assert response.status_code == status
    assert response.json()["code"] == http_code
    assert await Message.objects.filter(room=room).acount() == 0


async def test_longest_allowed_message_is_accepted(connect, pair):
    _alice, _bob, room, alice_cookie, _ = await pair()
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic)
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "é" * 4000}})
    event = await _next(a, "event", lambda f: f["event"] == "message.created")
    assert len(event["data"]["body"]) == 4000


async def test_message_rate_limit_is_per_user_across_processes(connect, pair):
    alice, _bob, room, alice_cookie, bob_cookie = await pair()
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic)
    http = await sync_to_async(_client)(alice)
    url = f"/api/rooms/{room.slug}/messages/"
    for i in range(5):  # half over HTTP (this process) ...
        response = await sync_to_async(http.post)(url, {"body": f"h{i}"},
                                                  content_type="application/json")
        assert response.status_code == 201
    for i in range(5):  # ... half over the hub (the server process)
        await a.send({"type": "publish", "topic": room.topic, "event": "message",
                      "data": {"body": f"w{i}"}, "id": i})
        await _next(a, "published", lambda f, i=i: f.get("id") == i)
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "one too many"}, "id": 99})
    error = await _next(a, "error")
    assert (error["code"], error["id"]) == ("rate_limited", 99)
    response = await sync_to_async(http.post)(url, {"body": "still too many"},
                                              content_type="application/json")
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    assert await Message.objects.filter(room=room).acount() == 10
    # Another user is not affected.
    b = await connect(cookie=bob_cookie)
    await b.subscribe(room.topic)
    await b.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "bob here"}, "id": 1})
    await _next(b, "published")


async def test_typing_is_ephemeral_and_throttled(connect, pair):
    _alice, _bob, room, alice_cookie, bob_cookie = await pair()
    a = await connect(cookie=alice_cookie)
    b = await connect(cookie=bob_cookie)
    first = await b.subscribe(room.topic)
    await a.subscribe(room.topic)
    await a.send({"type": "publish", "topic": room.topic, "event": "typing", "data": {}, "id": 1})
    typing = await _next(b, "event", lambda f: f["event"] == "typing")
    assert typing["data"]["user"]["username"] == "alice"
    assert "cursor" not in typing
    await a.send({"type": "publish", "topic": room.topic, "event": "typing", "data": {}, "id": 2})
    assert (await _next(a, "error"))["code"] == "rate_limited"
    # Not logged: a replay from before it holds nothing.
    late = await connect(cookie=bob_cookie)
    subscribed = await late.subscribe(room.topic, since=first["cursor"])
    assert subscribed["cursor"] == first["cursor"]
    await late.send({"type": "ping", "id": 5})
    assert await _next(late, "pong") == {"type": "pong", "id": 5}


async def test_clients_may_not_publish_other_events(connect, pair):
    _alice, _bob, room, alice_cookie, _ = await pair()
    a = await connect(cookie=alice_cookie)
    await a.send({"type": "publish", "topic": room.topic, "event": "message.created",
                  "data": {"body": "forged"}})
    assert (await a.expect("error"))["code"] == "not_allowed"


async def test_edit_and_delete_are_soft_and_broadcast(connect, pair):
    alice, bob, room, alice_cookie, _ = await pair()
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic)
    http = await sync_to_async(_client)(alice)
    url = f"/api/rooms/{room.slug}/messages/"
    sent = (await sync_to_async(http.post)(url, {"body": "typo"},
                                           content_type="application/json")).json()
    await _next(a, "event", lambda f: f["event"] == "message.created")
    other = await sync_to_async(_client)(bob)
    refused = await sync_to_async(other.patch)(f"{url}{sent['id']}/", {"body": "hijack"},
                                               content_type="application/json")
    assert refused.status_code == 403
    edited = await sync_to_async(http.patch)(f"{url}{sent['id']}/", {"body": "fixed"},
                                             content_type="application/json")
    assert edited.json()["body"] == "fixed" and edited.json()["edited_at"]
    assert (await _next(a, "event"))["event"] == "message.edited"
    deleted = await sync_to_async(http.delete)(f"{url}{sent['id']}/")
    assert deleted.json()["deleted"] is True and deleted.json()["body"] == ""
    assert (await _next(a, "event"))["event"] == "message.deleted"
    row = await Message.objects.aget(pk=sent["id"])
    assert row.deleted_at is not None and row.body == "fixed"  # kept, hidden
    page = (await sync_to_async(http.get)(url)).json()
    assert page["messages"][0]["deleted"] is True and page["messages"][0]["body"] == ""


async def _next(client: Any, frame_type: str, match: Any = None,
                timeout: float = 10.0) -> dict[str, Any]:
    """The next frame of a type (and matching), skipping others (presence, acks)."""
    for _ in range(200):
        frame = await client.recv(timeout)
        if frame.get("type") == frame_type and (match is None or match(frame)):
            return frame
    raise AssertionError(f"no {frame_type} frame")


def test_room_settings_are_checked():
    from django.core.checks import run_checks
    from django.test import override_settings

    from taskstream.conf import DEFAULTS

    bad = {**DEFAULTS, "REDIS_URL": "redis://x/0", "ROOM_MESSAGE_MAX_LENGTH": 0,
           "ROOM_PRESENCE_TTL": "soon"}
    with override_settings(TASKSTREAM=bad):
        ids = {e.id for e in run_checks()}
    assert {"taskstream.E050", "taskstream.E054"} <= ids



async def test_a_room_replaced_under_the_same_slug_gets_the_messages(connect, pair):
    alice, _bob, room, alice_cookie, _ = await pair("reborn")
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic)
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "first"}, "id": 1})
    await _next(a, "published")  # the server now remembers this room
    await room.adelete()
    again = await sync_to_async(_room)(alice, "reborn")
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "second"}, "id": 2})
    await _next(a, "published", lambda f: f.get("id") == 2)
    assert [m.body async for m in Message.objects.filter(room=again)] == ["second"]
