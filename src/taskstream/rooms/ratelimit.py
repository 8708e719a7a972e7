"""The per-user message rate limit: a sliding window in Redis, shared by every process."""

from __future__ import annotations

from taskstream.conf import conf
from taskstream.hub.redis import async_client
from taskstream.window import awindow_take, window_take


def _key(user_id: int) -> str:
    return f"{conf.KEY_PREFIX}rooms:rate:{user_id}"


def message_slot_take(user_id: int) -> float:
    """Take one message slot of ``user_id``: 0.0 when allowed, else seconds to wait."""
    return window_take(_key(user_id), conf.ROOM_MESSAGE_RATE, conf.ROOM_MESSAGE_RATE_WINDOW)


async def amessage_slot_take(user_id: int) -> float:
    """Async twin of :func:`message_slot_take`."""
    return await awindow_take(_key(user_id), conf.ROOM_MESSAGE_RATE,
                              conf.ROOM_MESSAGE_RATE_WINDOW)


async def atyping_slot_take(user_id: int, slug: str) -> bool:
    """True at most once per ``ROOM_TYPING_INTERVAL`` per user and room, across processes."""
    key = f"{conf.KEY_PREFIX}rooms:typing:{slug}:{user_id}"
    ok = await async_client().set(key, b"1", px=max(1, int(conf.ROOM_TYPING_INTERVAL * 1000)),
                                  nx=True)
    return bool(ok)
