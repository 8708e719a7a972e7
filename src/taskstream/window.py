"""The one sliding-window limiter: a log in Redis, shared by every process.

Used by the sign-in and sign-up throttles (``taskstream.throttle``) and the chat message
rate (``taskstream.rooms.ratelimit``). Each limit is one sorted set (one entry per
counted act, scored by its time in ms) and each check is one Lua step on that one key,
so it works the same on a single Redis and on a Redis Cluster (the key's slot decides
the node; no script touches two keys).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from taskstream.hub.redis import async_client, script, sync_client

# ARGV: now ms, window ms, limit, member (empty: only look, count nothing).
# Returns {1, 0} when under the limit (the act is counted), {0, ms until a slot frees}.
WINDOW_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.ceil(tonumber(oldest[2]) + window - now)}
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window))
end
return {1, 0}
"""


def _args(key: str, limit: int, window: float, take: bool) -> tuple[list[str], list[Any]]:
    now_ms = time.time() * 1000
    member = f"{now_ms}:{secrets.token_hex(4)}" if take else ""
    return [key], [now_ms, window * 1000, limit, member]


def _wait(reply: list[Any]) -> float:
    allowed, wait_ms = reply
    return 0.0 if int(allowed) else int(wait_ms) / 1000


def window_take(key: str, limit: int, window: float, *, take: bool = True) -> float:
    """Seconds until ``key`` may act again under ``limit`` acts per ``window`` seconds
    (0.0: now). ``take`` counts this act when it is allowed; without it, only look."""
    keys, args = _args(key, limit, window, take)
    return _wait(script(sync_client(), WINDOW_LUA)(keys=keys, args=args))


async def awindow_take(key: str, limit: int, window: float, *, take: bool = True) -> float:
    """Async twin of :func:`window_take`."""
    keys, args = _args(key, limit, window, take)
    return _wait(await script(async_client(), WINDOW_LUA)(keys=keys, args=args))
