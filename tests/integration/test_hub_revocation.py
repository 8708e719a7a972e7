"""Sockets lose what authorized them: logout, password change, deactivation, room removal.

A real server process holds the sockets; the changes are made in this process, as a view
or the admin would, and reach the server over Redis.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed

from taskstream.hub import publish
from taskstream.rooms.services import room_create

pytestmark = pytest.mark.django_db(transaction=True)


def _login(user: Any) -> tuple[Client, str]:
    """A real session: a Django test client signed in, and its cookie header."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return client, f"{name}={client.cookies[name].value}"


async def _closed_with(ws: Any, code: int, error: str) -> None:
    """The socket gets an ``error`` frame with ``error``, then is closed with ``code``."""
    frame = await ws.recv(timeout=10)
    while frame["type"] == "event":  # events published before the revocation may lead
        frame = await ws.recv(timeout=10)
    assert (frame["type"], frame["code"]) == ("error", error), frame
    with pytest.raises(ConnectionClosed):
        await ws.recv(timeout=10)
    assert ws.ws.close_code == code


async def _next_error(ws: Any) -> dict[str, Any]:
    """The next ``error`` frame, past events (presence) that may come first."""
    frame = await ws.recv(timeout=10)
    while frame["type"] == "event":
        frame = await ws.recv(timeout=10)
    assert frame["type"] == "error", frame
    return frame


async def _pong(ws: Any, frame_id: int) -> None:
    """Ping, and the next frame that is not a presence event is the pong."""
    await ws.send({"type": "ping", "id": frame_id})
    frame = await ws.recv(timeout=10)
    while frame["type"] == "event" and frame["event"].startswith("presence."):
        frame = await ws.recv(timeout=10)
    assert frame == {"type": "pong", "id": frame_id}


async def _still_live(ws: Any, topic: str) -> None:
    await sync_to_async(publish)(topic, "still.here", {})
    frame = await ws.expect("event", timeout=10)
    while frame["event"].startswith("presence."):
        frame = await ws.expect("event", timeout=10)
    assert frame["event"] == "still.here"


async def test_logout_closes_that_sessions_sockets_and_tokens(connect, make_user):
    user = await sync_to_async(make_user)()
    topic = f"user:{user.pk}"
    ending, ending_cookie = await sync_to_async(_login)(user)
    _other, other_cookie = await sync_to_async(_login)(user)
    token = (await sync_to_async(ending.post)("/api/ws-token/")).json()["token"]

    doomed = await connect(cookie=ending_cookie)
    by_token = await connect(origin=None)
    await by_token.send({"type": "auth", "token": token})
    assert (await by_token.expect("welcome"))["user"] == user.pk
    kept = await connect(cookie=other_cookie)
    for ws in (doomed, by_token, kept):
        await ws.subscribe(topic)

    await sync_to_async(ending.post)("/logout/")

    await _closed_with(doomed, 4401, "unauthenticated")
    await _closed_with(by_token, 4401, "unauthenticated")
    await _still_live(kept, topic)  # another session of the same user is not touched
    late = await connect(origin=None)
    await late.send({"type": "auth", "token": token})  # issued before the logout
    assert (await late.expect("error"))["code"] == "unauthenticated"


@pytest.mark.parametrize("change", ["password", "deactivate"])
async def test_password_change_or_deactivation_closes_every_socket(connect, make_user,
                                                                   change):
    user = await sync_to_async(make_user)()
    other = await sync_to_async(make_user)()
    _client, cookie = await sync_to_async(_login)(user)
    _client2, other_cookie = await sync_to_async(_login)(other)
    ws = await connect(cookie=cookie)
    bystander = await connect(cookie=other_cookie)
    await ws.subscribe(f"user:{user.pk}")
    await bystander.subscribe(f"user:{other.pk}")

    def apply() -> None:
        if change == "password":
            user.set_password("a-new-password")
        else:
            user.is_active = False
        user.save()

    await sync_to_async(apply)()
    await _closed_with(ws, 4401, "unauthenticated")
    await _still_live(bystander, f"user:{other.pk}")


async def test_a_login_does_not_disturb_open_sockets(connect, make_user):
    """Logins save the user (last_login): that is not a change of what signs sockets in."""
    user = await sync_to_async(make_user)()
    _client, cookie = await sync_to_async(_login)(user)
    ws = await connect(cookie=cookie)
    await ws.subscribe(f"user:{user.pk}")
    await sync_to_async(_login)(user)  # another login of the same user
    await _still_live(ws, f"user:{user.pk}")


async def test_a_member_removed_from_a_private_room_stops_receiving_it(connect, make_user):
    alice = await sync_to_async(make_user)()
    bob = await sync_to_async(make_user)()
    room = await sync_to_async(room_create)(slug="inner-circle", name="Inner", creator=alice,
                                            is_private=True, members=[bob])
    alice_http, alice_cookie = await sync_to_async(_login)(alice)
    _bob_http, bob_cookie = await sync_to_async(_login)(bob)
    a = await connect(cookie=alice_cookie)
    b = await connect(cookie=bob_cookie)
    await a.subscribe(room.topic)
    await b.subscribe(room.topic)

    removed = await sync_to_async(alice_http.delete)(
        f"/api/rooms/{room.slug}/members/{bob.username}/")
    assert removed.status_code == 204, removed.content

    frame = await _next_error(b)
    assert (frame["code"], frame["topic"]) == ("forbidden", room.topic)
    posted = await sync_to_async(alice_http.post)(
        f"/api/rooms/{room.slug}/messages/", {"body": "after bob left"},
        content_type="application/json")
    assert posted.status_code == 201
    got = await a.expect("event", timeout=10)
    while got["event"] != "message.created":
        got = await a.expect("event", timeout=10)
    assert got["data"]["body"] == "after bob left"
    # Bob's socket is open and answers, but the room's message never reached it.
    await _pong(b, 9)
    # He cannot subscribe again either.
    await b.send({"type": "subscribe", "topic": room.topic, "id": 10})
    assert (await b.expect("error"))["code"] == "forbidden"


async def test_a_room_made_private_drops_non_members_at_once(connect, make_user):
    alice = await sync_to_async(make_user)()
    carol = await sync_to_async(make_user)()
    room = await sync_to_async(room_create)(slug="was-open", name="Open", creator=alice)
    _alice_http, alice_cookie = await sync_to_async(_login)(alice)
    _carol_http, carol_cookie = await sync_to_async(_login)(carol)
    a = await connect(cookie=alice_cookie)
    c = await connect(cookie=carol_cookie)
    await a.subscribe(room.topic)
    await c.subscribe(room.topic)

    def close_room() -> None:
        room.is_private = True
        room.save()

    await sync_to_async(close_room)()
    frame = await _next_error(c)
    assert (frame["code"], frame["topic"]) == ("forbidden", room.topic)
    await _still_live(a, room.topic)  # the member stays; carol's socket did not get it:
    await _pong(c, 3)
