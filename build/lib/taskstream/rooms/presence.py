"""Who is in a room now, across every ASGI process, kept in Redis.

Each room has one sorted set of sockets: member ``<socket id>|<user id>|<name>``, score
the time (ms) the entry expires. A process adds its sockets when they subscribe to
``room:<slug>``, removes them when they leave, and refreshes the ones it still holds
every third of ``ROOM_PRESENCE_TTL``. A process that dies stops refreshing, so its
entries expire and the next operation on the room (any process's refresh, join or leave)
sweeps them. Every operation is one Lua step that reports which *users* appeared or
disappeared, so ``presence.joined`` / ``presence.left`` are published exactly when a
user's first socket arrives or last socket goes, whichever process it was on.

A socket that leaves lingers ``ROOM_PRESENCE_GRACE`` seconds (its entry is kept, expiring
then) and its process sweeps the room right after: a user who reconnects or resubscribes
within the grace never left, so a client resubscribing in a loop does not broadcast
``presence.left`` / ``presence.joined`` to every member each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
import weakref
from collections.abc import Coroutine
from typing import Any

from taskstream.conf import conf
from taskstream.hub.publish import apublish, publish
from taskstream.hub.redis import async_client, script, sync_client

logger = logging.getLogger("taskstream.rooms")

# KEYS[1] the room's set. ARGV: now ms, op (add | linger | remove), expiry ms, key TTL ms,
# members... ("linger" only moves the expiry of members still there: XX.)
# Returns {users present after, users that joined, users that left}, each a list of
# one representative member per user.
_PRESENCE_LUA = """
local now = tonumber(ARGV[1])
local function by_user(members)
  local seen, order = {}, {}
  for _, m in ipairs(members) do
    local uid = string.match(m, '^[^|]*|([^|]*)|')
    if uid and not seen[uid] then seen[uid] = m; order[#order + 1] = uid end
  end
  return seen, order
end
local before = by_user(redis.call('ZRANGE', KEYS[1], 0, -1))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 5, #ARGV do
  if ARGV[2] == 'add' then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[i])
  elseif ARGV[2] == 'linger' then
    redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[3]), ARGV[i])
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
local after, order = by_user(redis.call('ZRANGE', KEYS[1], 0, -1))
local present, joined, left = {}, {}, {}
for _, uid in ipairs(order) do
  present[#present + 1] = after[uid]
  if not before[uid] then joined[#joined + 1] = after[uid] end
end
for uid, m in pairs(before) do
  if not after[uid] then left[#left + 1] = m end
end
if #order > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return {present, joined, left}
"""


def _key(slug: str) -> str:
    return f"{conf.KEY_PREFIX}rooms:presence:{slug}"


def _decode(member: Any) -> dict[str, Any]:
    text = member.decode() if isinstance(member, bytes) else str(member)
    _socket, uid, name = text.split("|", 2)
    return {"id": int(uid) if uid.isdigit() else uid, "username": name}


def _args(slug: str, op: str, members: list[str]) -> tuple[list[str], list[Any]]:
    now_ms = int(time.time() * 1000)
    ttl_ms = int(conf.ROOM_PRESENCE_TTL * 1000)
    life_ms = int(conf.ROOM_PRESENCE_GRACE * 1000) if op == "linger" else ttl_ms
    return [_key(slug)], [now_ms, op, now_ms + life_ms, 2 * ttl_ms, *members]


def _changes(slug: str, joined: list[Any], left: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    # Presence is state, not history: a resubscribing client gets the fresh list in its
    # `subscribed` frame, so these events are ephemeral (not logged).
    return ([("presence.joined", {"user": _decode(m)}) for m in joined]
            + [("presence.left", {"user": _decode(m)}) for m in left])


def presence_list_now(slug: str) -> list[dict[str, Any]]:
    """Who is in the room now (sync, for views); sweeps and announces expired entries."""
    keys, args = _args(slug, "add", [])
    present, joined, left = script(sync_client(), _PRESENCE_LUA)(keys=keys, args=args)
    for event, data in _changes(slug, joined, left):
        publish(f"room:{slug}", event, data, ephemeral=True)
    return [_decode(m) for m in present]


def _member(socket_id: str, user: Any) -> str:
    name = str(user.get_username()).replace("|", "/")
    return f"{socket_id}|{user.pk}|{name}"


class PresenceTracker:
    """This process's sockets in rooms, and the task that keeps their entries fresh."""

    def __init__(self) -> None:
        # Sockets ids are unique only inside one process: prefix them with a process token.
        self.process = f"{os.getpid():x}{secrets.token_hex(3)}"
        self.local: dict[str, dict[str, str]] = {}  # slug -> {connection id: member}
        self._refresher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def join(self, slug: str, connection_id: str, user: Any) -> list[dict[str, Any]]:
        """Add one socket; publishes ``presence.joined`` if it is the user's first. Returns
        everyone present."""
        member = _member(f"{self.process}.{connection_id}", user)
        self.local.setdefault(slug, {})[connection_id] = member
        self._ensure_refresher()
        present = await self._apply(slug, "add", [member])
        return [_decode(m) for m in present]

    def leave_soon(self, slug: str, connection_id: str) -> None:
        """Forget one socket now and remove its entry in the background.

        Synchronous on purpose: it runs while the socket is being torn down, when tasks
        tied to the socket may already be cancelled; the removal task belongs to the tracker.
        """
        sockets = self.local.get(slug)
        member = sockets.pop(connection_id, None) if sockets else None
        if sockets is not None and not sockets:
            del self.local[slug]
        if member is None:
            return
        task = asyncio.get_running_loop().create_task(self._leave(slug, member))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _leave(self, slug: str, member: str) -> None:
        grace = conf.ROOM_PRESENCE_GRACE
        if grace <= 0:
            await self._apply(slug, "remove", [member])
            return
        await self._apply(slug, "linger", [member])
        # Then sweep: the entry has expired, and unless the user came back meanwhile
        # (another entry of theirs), this is their presence.left.
        await asyncio.sleep(grace + 0.05)
        await self._apply(slug, "add", [])

    async def present(self, slug: str) -> list[dict[str, Any]]:
        return [_decode(m) for m in await self._apply(slug, "add", [])]

    async def refresh(self) -> None:
        """Push the expiry of every local entry forward; sweeps what others left behind."""
        for slug, sockets in list(self.local.items()):
            if sockets:
                await self._apply(slug, "add", list(sockets.values()))

    async def _apply(self, slug: str, op: str, members: list[str]) -> list[Any]:
        keys, args = _args(slug, op, members)
        present, joined, left = await script(async_client(), _PRESENCE_LUA)(keys=keys, args=args)
        for event, data in _changes(slug, joined, left):
            await apublish(f"room:{slug}", event, data, ephemeral=True)
        return list(present)

    async def close(self) -> None:
        """Stop refreshing (entries then expire) and finish pending removals."""
        tasks = [t for t in (self._refresher, *self._tasks) if t is not None]
        if self._refresher is not None:
            self._refresher.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refresher = None

    def _ensure_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while self.local:
            await asyncio.sleep(conf.ROOM_PRESENCE_TTL / 3)
            try:
                await self.refresh()
            except Exception:  # Redis away: entries may expire; the next refresh re-adds them
                logger.warning("rooms: presence refresh failed", exc_info=True)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("rooms: presence update failed", exc_info=task.exception())


_trackers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PresenceTracker] = (
    weakref.WeakKeyDictionary()
)


def get_tracker() -> PresenceTracker:
    """The tracker of the running event loop (one per ASGI process)."""
    loop = asyncio.get_running_loop()
    tracker = _trackers.get(loop)
    if tracker is None:
        tracker = _trackers[loop] = PresenceTracker()
    return tracker


async def _done() -> None:
    return None


def leave_hook(user: Any, slug: str, connection_id: str) -> Coroutine[Any, Any, None]:
    """``on_leave`` of room topics: does its work before returning the (empty) coroutine."""
    with contextlib.suppress(RuntimeError):  # no running loop: nothing was tracked
        get_tracker().leave_soon(slug, connection_id)
    return _done()
