"""Reads: which rooms a user may see, message pages, event payloads."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from taskstream.hub.cursors_api import latest_cursor
from taskstream.rooms.models import Message, Room


def room_may_read(*, room: Room, user: Any) -> bool:
    """Any signed-in user reads a public room; only members read a private one."""
    if not (user.is_authenticated and user.is_active):
        return False
    return not room.is_private or room.members.filter(pk=user.pk).exists()


async def aroom_may_read(*, slug: str, user: Any) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    room = await Room.objects.filter(slug=slug).only("id", "is_private").afirst()
    if room is None:
        return False
    return not room.is_private or await room.members.filter(pk=user.pk).aexists()


def room_list(*, user: Any) -> QuerySet[Room]:
    """Rooms ``user`` may read: every public one and the private ones they belong to."""
    if not user.is_authenticated:
        return Room.objects.none()
    return Room.objects.filter(Q(is_private=False) | Q(members=user)).distinct()


def message_page(*, room: Room, before: int | None, limit: int) -> tuple[list[Message], int | None]:
    """Up to ``limit`` messages older than id ``before`` (newest page when None), oldest
    first, and the ``before`` of the next older page (None at the beginning)."""
    qs = Message.objects.filter(room=room).select_related("author").order_by("-id")
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return rows, (rows[0].pk if more and rows else None)


def user_payload(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.get_username()}


def message_payload(message: Message) -> dict[str, Any]:
    """The JSON shape of a message in the API and in ``message.*`` events."""
    deleted = message.deleted_at is not None
    return {
        "id": message.pk,
        "room": message.room.slug,
        "author": user_payload(message.author),
        "body": "" if deleted else message.body,
        "created_at": message.created_at,
        "edited_at": message.edited_at,
        "deleted": deleted,
    }


def topic_cursor(topic: str) -> str:
    """The latest cursor of a hub topic: subscribe with ``since`` it after reading state
    over HTTP and nothing published in between is missed."""
    return latest_cursor(topic)
