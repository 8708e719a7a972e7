"""Redis clients, defined once: a pooled sync client per process, an async one per loop.

Sync code (views, Celery tasks, the shell) shares one connection pool, so a task
never opens a connection per call and never spins an event loop. Async clients
are bound to the loop that created them, as redis-py's asyncio pools must be.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.retry import Retry as SyncRetry

from taskstream.conf import conf

_sync_lock = threading.Lock()
_sync_client: redis.Redis | None = None
_sync_url: str | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, Any]] = (
    weakref.WeakKeyDictionary()
)

# Commands are short: a bounded timeout surfaces a dead Redis instead of hanging a request.
COMMAND_TIMEOUT = 10.0
QUICK_TIMEOUT = 1.0
_quick_client: redis.Redis | None = None
_quick_url: str | None = None


def sync_client() -> redis.Redis:
    """The process-wide pooled sync client (fork-safe: redis-py resets pools after fork)."""
    global _sync_client, _sync_url
    url = conf.REDIS_URL
    if _sync_client is None or _sync_url != url:
        with _sync_lock:
            if _sync_client is None or _sync_url != url:
                _sync_client = redis.Redis.from_url(
                    url, socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=5,
                    socket_keepalive=True, health_check_interval=30,
                )
                _sync_url = url
    return _sync_client


def quick_client() -> redis.Redis:
    """A pooled sync client that gives up after :data:`QUICK_TIMEOUT` seconds.

    For work that has a fallback: the outbox's fast path (the relay sends what it could
    not) and the cursor a page reads (the page works without it). A paused Redis then
    costs a request about a second, not ``COMMAND_TIMEOUT``.
    """
    global _quick_client, _quick_url
    url = conf.REDIS_URL
    if _quick_client is None or _quick_url != url:
        with _sync_lock:
            if _quick_client is None or _quick_url != url:
                _quick_client = redis.Redis.from_url(
                    url, socket_timeout=QUICK_TIMEOUT, socket_connect_timeout=QUICK_TIMEOUT,
                    socket_keepalive=True, health_check_interval=30,
                    retry=SyncRetry(NoBackoff(), 0),
                )
                _quick_url = url
    return _quick_client


def async_client() -> redis.asyncio.Redis:
    """The async client of the running event loop."""
    loop = asyncio.get_running_loop()
    url = conf.REDIS_URL
    entry = _async_clients.get(loop)
    if entry is None or entry[0] != url:
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=5,
            socket_keepalive=True, health_check_interval=30,
        )
        _async_clients[loop] = (url, client)
        return client
    cached: redis.asyncio.Redis = entry[1]
    return cached


@functools.cache
def _scripts(lua: str) -> tuple[Script, AsyncScript]:
    # redis-py's Script objects, one pair per Lua text for the whole process: a Script is
    # only the text and its SHA (any client runs it, EVALSHA first, loading it again after
    # a NOSCRIPT), so no client needs a cache of its own. Given as bytes: no client to
    # borrow an encoder from.
    body = lua.encode()
    return Script(None, body), AsyncScript(None, body)  # type: ignore[arg-type]


def script(client: Any, lua: str) -> Any:
    """``lua`` as a redis-py Script run by ``client``: ``script(c, LUA)(keys=..., args=...)``
    (awaitable with an async client)."""
    sync_script, async_script = _scripts(lua)
    chosen = async_script if isinstance(client, redis.asyncio.Redis) else sync_script
    return functools.partial(chosen, client=client)


def pubsub_client() -> redis.asyncio.Redis:
    """A dedicated async client for one long-lived Pub/Sub connection.

    ``socket_timeout=None``: a subscriber waits for messages indefinitely. redis-py 8's
    default 5 s read timeout is what kills idle naive Channels sockets every 5 s;
    dead connections are found by TCP keepalive and the health-check PING instead.
    """
    return redis.asyncio.Redis.from_url(
        conf.REDIS_URL, socket_timeout=None, socket_connect_timeout=5, socket_keepalive=True,
        health_check_interval=30, decode_responses=True,
        # No silent reconnect inside redis-py: the fan-out must see every reconnect,
        # because events published meanwhile have to be replayed from the log.
        retry=Retry(NoBackoff(), 0),
    )
