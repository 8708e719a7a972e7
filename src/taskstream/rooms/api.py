"""HTTP API of rooms: list/create rooms, members, message history (``before=`` cursor),
send/edit/delete messages, who is present. Session auth; CSRF on writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from taskstream.api import ApiError
from taskstream.conf import conf
from taskstream.rooms import selectors, services
from taskstream.rooms.models import Message, Room
from taskstream.rooms.presence import presence_list_now

router = Router(tags=["rooms"])

class UserOut(Schema):
    id: int
    username: str


class RoomOut(Schema):
    slug: str
    name: str
    is_private: bool


class RoomIn(Schema):
    slug: str = Field(max_length=50)
    name: str = Field(max_length=100)
    is_private: bool = False
    members: list[str] = Field(default_factory=list, max_length=500)


class MemberIn(Schema):
    username: str = Field(max_length=150)


class MessageOut(Schema):
    id: int
    room: str
    author: UserOut | None
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool


class MessageIn(Schema):
    body: Any = None  # checked by the one validation path, with the hub's error codes


class HistoryQuery(Schema):
    before: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1, le=200)


class HistoryOut(Schema):
    messages: list[MessageOut]
    next_before: int | None
    cursor: str


class PresenceOut(Schema):
    presence: list[UserOut]


def _room_or_refuse(request: HttpRequest, slug: str) -> Room:
    room = Room.objects.filter(slug=slug).first()
    # A private room answers a non-member as if it did not exist: its name stays unknown.
    if room is None or not selectors.room_may_read(room=room, user=request.user):
        raise ApiError(404, "not_found", f"no room {slug!r}")
    return room


def _room_out(room: Room) -> dict[str, Any]:
    return {"slug": room.slug, "name": room.name, "is_private": room.is_private}


@router.get("/rooms/", response=list[RoomOut])
def rooms_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Rooms you may read."""
    return [_room_out(r) for r in selectors.room_list(user=request.user)]


@router.post("/rooms/", response={201: RoomOut})
def rooms_create(request: HttpRequest, payload: RoomIn) -> Status[dict[str, Any]]:
    """Create a room; you become its first member (add others by username)."""
    from django.contrib.auth import get_user_model

    if Room.objects.filter(slug=payload.slug).exists():
        raise ApiError(409, "conflict", f"room {payload.slug!r} exists")
    users = list(get_user_model().objects.filter(username__in=payload.members, is_active=True))
    room = services.room_create(slug=payload.slug, name=payload.name, creator=request.user,
                                is_private=payload.is_private, members=users)
    return Status(201, _room_out(room))


@router.get("/rooms/{slug}/", response=RoomOut)
def rooms_detail(request: HttpRequest, slug: str) -> dict[str, Any]:
    return _room_out(_room_or_refuse(request, slug))


@router.post("/rooms/{slug}/members/", response={201: UserOut})
def rooms_member_add(request: HttpRequest, slug: str,
                     payload: MemberIn) -> Status[dict[str, Any] | None]:
    """Add a member (the room's creator or staff)."""
    room = _room_or_refuse(request, slug)
    user = services.room_member_add(room=room, by=request.user, username=payload.username)
    return Status(201, selectors.user_payload(user))


@router.delete("/rooms/{slug}/members/{username}/", response={204: None})
def rooms_member_remove(request: HttpRequest, slug: str, username: str) -> Status[None]:
    """Remove a member (the room's creator or staff), or leave the room (your own name).

    Their open sockets stop receiving the room at once (a ``forbidden`` error frame).
    """
    room = _room_or_refuse(request, slug)
    services.room_member_remove(room=room, by=request.user, username=username)
    return Status(204, None)


@router.get("/rooms/{slug}/messages/", response=HistoryOut)
def messages_list(request: HttpRequest, slug: str,
                  query: Query[HistoryQuery]) -> dict[str, Any]:
    """A page of history, oldest first. ``next_before`` fetches the page before it; subscribe
    to ``room:<slug>`` with ``since=cursor`` to continue live without a gap (dedupe by id)."""
    room = _room_or_refuse(request, slug)
    # Read the cursor before the rows: anything stored after it also reaches the socket.
    cursor = selectors.topic_cursor(room.topic)
    rows, next_before = selectors.message_page(room=room, before=query.before,
                                               limit=query.limit or conf.ROOM_HISTORY_PAGE)
    return {"messages": [selectors.message_payload(m) for m in rows],
            "next_before": next_before, "cursor": cursor}


@router.post("/rooms/{slug}/messages/", response={201: MessageOut})
def messages_create(request: HttpRequest, slug: str,
                    payload: MessageIn) -> Status[dict[str, Any]]:
    """Send a message: the same checks as a hub ``publish`` (length, empty, rate, access)."""
    room = _room_or_refuse(request, slug)
    with transaction.atomic():
        message = services.message_create(room=room, author=request.user, body=payload.body)
    return Status(201, selectors.message_payload(message))


def _message(request: HttpRequest, slug: str, message_id: int) -> Message:
    room = _room_or_refuse(request, slug)
    message = Message.objects.filter(room=room, pk=message_id).select_related("author",
                                                                              "room").first()
    if message is None:
        raise ApiError(404, "not_found", "no such message")
    return message


@router.patch("/rooms/{slug}/messages/{message_id}/", response=MessageOut)
def messages_edit(request: HttpRequest, slug: str, message_id: int,
                  payload: MessageIn) -> dict[str, Any]:
    with transaction.atomic():
        message = services.message_edit(message=_message(request, slug, message_id),
                                        user=request.user, body=payload.body)
    return selectors.message_payload(message)


@router.delete("/rooms/{slug}/messages/{message_id}/", response=MessageOut)
def messages_delete(request: HttpRequest, slug: str, message_id: int) -> dict[str, Any]:
    with transaction.atomic():
        message = services.message_delete(message=_message(request, slug, message_id),
                                          user=request.user)
    return selectors.message_payload(message)


@router.get("/rooms/{slug}/presence/", response=PresenceOut)
def presence_list(request: HttpRequest, slug: str) -> dict[str, Any]:
    """Who is in the room now, on any server process."""
    _room_or_refuse(request, slug)
    return {"presence": presence_list_now(slug)}
