"""Redis clients, defined once: a pooled sync client per process, an async one per loop.

Sync code (views, Celery tasks, the shell) shares one connection pool, so a task
never opens a connection per call and never spins an event loop. Async clients
are bound to the loop that created them, as redis-py's asyncio pools must be.

``REDIS_URL`` = ``redis+cluster://host:port`` (or ``rediss+cluster://``) selects a Redis
Cluster: the clients are then redis-py's ``RedisCluster`` (sync and async), which route
each command and script to the node owning its keys' slot and follow MOVED/ASK and
failovers. They offer the same command methods as ``Redis``, so callers do not care
which one they hold; live fan-out is the exception (sharded Pub/Sub, see ``fanout``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from typing import Any, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
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


_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster(url: str | None = None) -> bool:
    """True when ``url`` (default ``REDIS_URL``) names a Redis Cluster."""
    return urlsplit(url if url is not None else conf.REDIS_URL).scheme in _CLUSTER_SCHEMES


def plain_url(url: str) -> str:
    """``url`` with ``redis+cluster`` spelled ``redis`` (what redis-py parses)."""
    scheme, sep, rest = url.partition("://")
    return _CLUSTER_SCHEMES.get(scheme, scheme) + sep + rest


def live_command() -> str:
    """The command that delivers a topic's live frames: sharded ``SPUBLISH`` on a Cluster,
    so a message goes to the shard owning the topic only, ``PUBLISH`` on a single Redis
    (any Redis >= 6.2)."""
    return "SPUBLISH" if is_cluster() else "PUBLISH"


def live_publish(client: Any, channel: str, message: str) -> Any:
    """Publish ``message`` on a fan-out channel with :func:`live_command` (awaitable with an
    async client): what the log script does, for messages that skip the log."""
    if is_cluster():
        return client.spublish(channel, message)
    return client.publish(channel, message)


def _sync(url: str, **options: Any) -> redis.Redis:
    if is_cluster(url):
        # RedisCluster has the same command methods as Redis; typed as one for callers.
        return cast(redis.Redis, redis.cluster.RedisCluster.from_url(plain_url(url), **options))
    return redis.Redis.from_url(url, **options)


def sync_client() -> redis.Redis:
    """The process-wide pooled sync client (fork-safe: redis-py resets pools after fork)."""
    global _sync_client, _sync_url
    url = conf.REDIS_URL
    if _sync_client is None or _sync_url != url:
        with _sync_lock:
            if _sync_client is None or _sync_url != url:
                _sync_client = _sync(
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
                _quick_client = _sync(
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
        options: dict[str, Any] = {"socket_timeout": COMMAND_TIMEOUT, "socket_connect_timeout": 5,
                                   "socket_keepalive": True, "health_check_interval": 30}
        if is_cluster(url):
            client: Any = redis.asyncio.cluster.RedisCluster.from_url(plain_url(url), **options)
        else:
            client = redis.asyncio.Redis.from_url(url, **options)
        _async_clients[loop] = (url, client)
        return client
    cached: redis.asyncio.Redis = entry[1]
    return cached


_ASYNC = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)


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
    chosen = async_script if isinstance(client, _ASYNC) else sync_script
    return functools.partial(chosen, client=client)


def pubsub_client(url: str | None = None) -> redis.asyncio.Redis:
    """A dedicated async client for one long-lived Pub/Sub connection (to ``url``, by
    default ``REDIS_URL``; on a Cluster the fan-out opens one per node it listens to).

    ``socket_timeout=None``: a subscriber waits for messages indefinitely. redis-py 8's
    default 5 s read timeout is what kills idle naive Channels sockets every 5 s;
    dead connections are found by TCP keepalive and the health-check PING instead.
    """
    return redis.asyncio.Redis.from_url(
        url or conf.REDIS_URL, socket_timeout=None, socket_connect_timeout=5, socket_keepalive=True,
        health_check_interval=30, decode_responses=True,
        # No silent reconnect inside redis-py: the fan-out must see every reconnect,
        # because events published meanwhile have to be replayed from the log.
        retry=Retry(NoBackoff(), 0),
    )
