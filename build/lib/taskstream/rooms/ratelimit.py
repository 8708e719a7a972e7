"""The per-user message rate limit: a sliding window in Redis, shared by every process."""

from __future__ import annotations

import secrets
import time

from taskstream.conf import conf
from taskstream.hub.redis import async_client, script, sync_client

# Sliding log: one sorted-set entry per accepted message, scored by its time (ms).
# Returns {1, 0} when accepted, {0, ms until a slot frees} when refused.
_WINDOW_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.ceil(tonumber(oldest[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window))
return {1, 0}
"""


def _args(user_id: int) -> tuple[list[str], list[object]]:
    key = f"{conf.KEY_PREFIX}rooms:rate:{user_id}"
    now_ms = time.time() * 1000
    return [key], [now_ms, conf.ROOM_MESSAGE_RATE_WINDOW * 1000, conf.ROOM_MESSAGE_RATE,
                   f"{now_ms}:{secrets.token_hex(4)}"]


def message_slot_take(user_id: int) -> float:
    """Take one message slot of ``user_id``: 0.0 when allowed, else seconds to wait."""
    keys, args = _args(user_id)
    allowed, wait_ms = script(sync_client(), _WINDOW_LUA)(keys=keys, args=args)
    return 0.0 if int(allowed) else int(wait_ms) / 1000


async def amessage_slot_take(user_id: int) -> float:
    """Async twin of :func:`message_slot_take`."""
    keys, args = _args(user_id)
    allowed, wait_ms = await script(async_client(), _WINDOW_LUA)(keys=keys, args=args)
    return 0.0 if int(allowed) else int(wait_ms) / 1000


async def atyping_slot_take(user_id: int, slug: str) -> bool:
    """True at most once per ``ROOM_TYPING_INTERVAL`` per user and room, across processes."""
    key = f"{conf.KEY_PREFIX}rooms:typing:{slug}:{user_id}"
    ok = await async_client().set(key, b"1", px=max(1, int(conf.ROOM_TYPING_INTERVAL * 1000)),
                                  nx=True)
    return bool(ok)
