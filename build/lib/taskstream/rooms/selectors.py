"""Reads: which rooms a user may see, message pages, event payloads."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import Q, QuerySet

from taskstream.hub.cursors_api import latest_cursor
from taskstream.rooms.models import Message, Room


def room_may_read(*, room: Room, user: Any) -> bool:
    """Any signed-in user reads a public room; only members read a private one."""
    if not (user.is_authenticated and user.is_active):
        return False
    return not room.is_private or room.members.filter(pk=user.pk).exists()


# slug -> (expires at, room id, is private). The hub checks access on every message
# published over a socket; a process remembers each room's id and privacy for a few
# seconds instead of asking the database each time (membership is never cached). A
# room made private is closed to new non-member subscribers within this many seconds.
ROOM_CACHE_SECONDS = 5.0
_room_cache: dict[str, tuple[float, int, bool]] = {}


async def aroom_ref(slug: str, *, fresh: bool = False) -> tuple[int, bool] | None:
    """``(id, is_private)`` of room ``slug``, or None; cached unless ``fresh``."""
    now = time.monotonic()
    hit = None if fresh else _room_cache.get(slug)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    row = await Room.objects.filter(slug=slug).values_list("id", "is_private").afirst()
    if row is None:
        _room_cache.pop(slug, None)
        return None
    if len(_room_cache) >= 10_000:
        _room_cache.clear()
    _room_cache[slug] = (now + ROOM_CACHE_SECONDS, row[0], row[1])
    return row[0], row[1]


def room_forget(slug: str) -> None:
    """Drop what this process remembers of room ``slug`` (its access changed)."""
    _room_cache.pop(slug, None)


async def aroom_may_read(*, slug: str, user: Any) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    ref = await aroom_ref(slug)
    if ref is None:
        return False
    room_id, private = ref
    if not private:
        return True
    member = Room.members.through.objects.filter(room_id=room_id, user_id=user.pk)
    if await member.aexists():
        return True
    # Not a member of the room we remember: re-read in case it was replaced.
    ref = await aroom_ref(slug, fresh=True)
    return ref is not None and (not ref[1] or await Room.members.through.objects.filter(
        room_id=ref[0], user_id=user.pk).aexists())


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


def message_payload(message: Message, *, slug: str | None = None) -> dict[str, Any]:
    """The JSON shape of a message in the API and in ``message.*`` events."""
    deleted = message.deleted_at is not None
    return {
        "id": message.pk,
        "room": slug if slug is not None else message.room.slug,
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
