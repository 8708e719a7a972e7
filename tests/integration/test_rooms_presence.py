"""Presence across several real server processes, abrupt disconnects and dead processes."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from taskstream.rooms.services import room_create

pytestmark = pytest.mark.django_db(transaction=True)

# Short keep-alive and presence lifetimes, so dead peers and dead processes show quickly.
FAST = json.dumps({"HEARTBEAT": 1, "ROOM_PRESENCE_TTL": 2})


@pytest.fixture(scope="module")
def second_server(start_server):
    return start_server()


@pytest.fixture(scope="module")
def fast_server(start_server):
    return start_server(TASKSTREAM_JSON=FAST)


@pytest.fixture
def people(make_user, session_cookie):
    async def make(slug: str) -> tuple[Any, ...]:
        alice = await sync_to_async(make_user)("alice")
        bob = await sync_to_async(make_user)("bob")
        room = await sync_to_async(room_create)(slug=slug, name=slug, creator=alice,
                                                is_private=True, members=[bob])
        cookies = [await sync_to_async(session_cookie)(u) for u in (alice, bob)]
        return alice, bob, room, *cookies

    return make


async def _presence_event(client: Any, event: str, username: str,
                          timeout: float = 15.0) -> dict[str, Any]:
    for _ in range(100):
        frame = await client.recv(timeout)
        if (frame.get("type") == "event" and frame["event"] == event
                and frame["data"]["user"]["username"] == username):
            return frame
    raise AssertionError(f"no {event} for {username}")


def _names(presence: list[dict[str, Any]]) -> list[str]:
    return sorted(p["username"] for p in presence)


def _api_presence(user: Any, slug: str) -> list[str]:
    client = Client()
    client.force_login(user)
    return _names(client.get(f"/api/rooms/{slug}/presence/").json()["presence"])


async def test_presence_spans_server_processes(connect, people, hub_server, second_server):
    alice, bob, room, alice_cookie, bob_cookie = await people("across")
    a = await connect(hub_server, cookie=alice_cookie)
    subscribed = await a.subscribe(room.topic)
    assert _names(subscribed["presence"]) == ["alice"]
    b = await connect(second_server, cookie=bob_cookie)
    subscribed = await b.subscribe(room.topic)
    assert _names(subscribed["presence"]) == ["alice", "bob"]
    joined = await _presence_event(a, "presence.joined", "bob")
    assert joined["data"]["user"]["id"] == bob.pk and "cursor" not in joined
    assert await sync_to_async(_api_presence)(alice, room.slug) == ["alice", "bob"]

    # A second tab of bob's: no new join; closing it is not a leave while the first stays.
    b2 = await connect(hub_server, cookie=bob_cookie)
    await b2.subscribe(room.topic)
    await b2.close()
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "marker"}})
    frame = await a.recv()
    while frame.get("event") != "message.created":
        assert frame.get("event") not in ("presence.joined", "presence.left"), frame
        frame = await a.recv()

    # Bob's socket dies without a close frame: the server sees the TCP connection go.
    b.ws.transport.abort()
    await _presence_event(a, "presence.left", "bob")
    assert await sync_to_async(_api_presence)(alice, room.slug) == ["alice"]


async def test_unsubscribe_leaves(connect, people):
    _alice, _bob, room, alice_cookie, bob_cookie = await people("unsub")
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic)
    b = await connect(cookie=bob_cookie)
    await b.subscribe(room.topic)
    await _presence_event(a, "presence.joined", "bob")
    await b.send({"type": "unsubscribe", "topic": room.topic})
    await _presence_event(a, "presence.left", "bob")


async def test_resubscribing_in_a_loop_announces_nothing(connect, people):
    """A client that resubscribes (or reconnects) quickly never left: no presence churn."""
    _alice, _bob, room, alice_cookie, bob_cookie = await people("churn")
    a = await connect(cookie=alice_cookie)
    await a.subscribe(room.topic)
    b = await connect(cookie=bob_cookie)
    await b.subscribe(room.topic)
    await _presence_event(a, "presence.joined", "bob")
    async def until(frame_type: str) -> None:
        while (await b.recv())["type"] != frame_type:
            pass

    for _ in range(5):
        await b.send({"type": "unsubscribe", "topic": room.topic})
        await until("unsubscribed")
        await b.send({"type": "subscribe", "topic": room.topic})
        await until("subscribed")
    b2 = await connect(cookie=bob_cookie)  # a reload: a new socket, the old one closes
    await b2.subscribe(room.topic)
    await b.close()
    await a.send({"type": "publish", "topic": room.topic, "event": "message",
                  "data": {"body": "marker"}})
    frame = await a.recv()
    while frame.get("event") != "message.created":
        assert frame.get("event") not in ("presence.joined", "presence.left"), frame
        frame = await a.recv()
    # Bob really goes: presence.left once the grace has passed.
    await b2.close()
    await _presence_event(a, "presence.left", "bob")


async def test_silent_peer_leaves_within_the_heartbeat_timeout(connect, people, fast_server):
    _alice, _bob, room, alice_cookie, bob_cookie = await people("silent")
    a = await connect(fast_server, cookie=alice_cookie)
    await a.subscribe(room.topic)
    b = await connect(fast_server, cookie=bob_cookie)
    await b.subscribe(room.topic)
    await _presence_event(a, "presence.joined", "bob")
    # Bob's machine goes away without a FIN: nothing it would send, no pong, reaches the server.
    b.ws.transport.pause_reading()
    await _presence_event(a, "presence.left", "bob", timeout=10)
    b.ws.transport.abort()  # a paused socket would wait out the close handshake


async def test_a_dead_process_s_sockets_expire(connect, people, fast_server, start_server):
    alice, _bob, room, alice_cookie, bob_cookie = await people("crash")
    doomed = start_server(TASKSTREAM_JSON=FAST)
    a = await connect(fast_server, cookie=alice_cookie)
    await a.subscribe(room.topic)
    b = await connect(doomed, cookie=bob_cookie)
    await b.subscribe(room.topic)
    await _presence_event(a, "presence.joined", "bob")
    doomed.stop(signal.SIGKILL)  # no on_leave runs: its entries must expire
    await _presence_event(a, "presence.left", "bob", timeout=10)
    assert await sync_to_async(_api_presence)(alice, room.slug) == ["alice"]
