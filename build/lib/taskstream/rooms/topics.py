"""The ``room:<slug>`` topic kind: members read, clients publish ``message`` and ``typing``."""

from __future__ import annotations

from typing import Any

from taskstream.exceptions import ProtocolError
from taskstream.hub import Publication, register_topic
from taskstream.hub import protocol as p
from taskstream.rooms.exceptions import RoomError
from taskstream.rooms.models import SLUG_PATTERN

# RoomError codes that are not wire codes map onto the closest one.
_WIRE = {"invalid": p.BAD_FRAME}


async def _may_read(user: Any, slug: str) -> bool:
    from taskstream.rooms.selectors import aroom_may_read

    return await aroom_may_read(slug=slug, user=user)


async def _on_publish(user: Any, slug: str, event: str, data: dict[str, Any]) -> Publication:
    from taskstream.rooms.ratelimit import atyping_slot_take
    from taskstream.rooms.selectors import user_payload
    from taskstream.rooms.services import amessage_create

    if event == "typing":
        if not await atyping_slot_take(user.pk, slug):
            raise ProtocolError(p.RATE_LIMITED, "typing is sent at most once per "
                                "ROOM_TYPING_INTERVAL")
        return Publication("typing", {"user": user_payload(user)}, ephemeral=True)
    try:
        payload = await amessage_create(slug=slug, author=user, body=data.get("body"))
    except RoomError as exc:
        raise ProtocolError(_WIRE.get(exc.code, exc.code), exc.detail) from exc
    return Publication("message.created", payload)


async def _on_join(user: Any, slug: str, connection_id: str) -> dict[str, Any]:
    from taskstream.rooms.presence import get_tracker

    return {"presence": await get_tracker().join(slug, connection_id, user)}


def _forget(slug: str) -> None:
    from taskstream.rooms.selectors import room_forget

    room_forget(slug)


def register_room_topic() -> None:
    from taskstream.rooms.presence import leave_hook

    register_topic("room", authorize=_may_read, key_pattern=SLUG_PATTERN,
                   client_events={"message", "typing"}, on_publish=_on_publish,
                   on_join=_on_join, on_leave=leave_hook, forget=_forget)
