"""Live fan-out: Redis Pub/Sub connections per process, shared by every local socket.

A topic's channel is subscribed while at least one local socket wants it. Each event
arrives once per process, already serialized by the publish script, and is handed to
every local subscriber as the same string. If a Pub/Sub connection drops (Redis
restarted, network blip, a Cluster failover) the fan-out reconnects, resubscribes and
asks every subscriber of the topics it carried to resync from the log, so nothing
published meanwhile is silently lost: each subscriber gets the events or a ``gap``.

On a single Redis there is one connection (a *line*), with ``SUBSCRIBE``. On a Redis
Cluster the channels are sharded (``SSUBSCRIBE``; the publish script ``SPUBLISH``-es),
so a message reaches only the shard that owns the topic's slot: one line per primary
that owns a subscribed topic, each reading its own node. When a node dies, or tells
the line it no longer owns a slot (a server-sent ``sunsubscribe``), the line's topics
are re-routed after a topology refresh and their subscribers resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from taskstream import telemetry
from taskstream.conf import conf
from taskstream.hub import keys
from taskstream.hub.cursor import StreamId, parse_sid
from taskstream.hub.log import EPHEMERAL_MARK
from taskstream.hub.redis import async_client, is_cluster, plain_url, pubsub_client

logger = logging.getLogger("taskstream.hub")

SUBSCRIBE_TIMEOUT = 10.0
IDLE_PING = 15.0


class Subscriber(Protocol):
    def deliver(self, sid: StreamId | None, frame: str) -> None: ...

    def resync(self) -> None: ...


def node_url(host: str, port: int) -> str:
    """``REDIS_URL`` (its credentials and options) pointed at one Cluster node."""
    parts = urlsplit(plain_url(conf.REDIS_URL))
    userinfo, at, _ = parts.netloc.rpartition("@")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit((parts.scheme, f"{userinfo}{at}{address}", "", parts.query, ""))


class _Line:
    """One Pub/Sub connection, its reader task and the topics it carries."""

    __slots__ = ("client", "leaving", "name", "pubsub", "reader", "topics")

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.client: Any = pubsub_client(url)
        self.pubsub: Any = self.client.pubsub()
        self.reader: asyncio.Task[None] | None = None
        self.topics: set[str] = set()
        # Topics this process asked to leave, so their sunsubscribe is not taken for a
        # slot that moved away.
        self.leaving: set[str] = set()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()


class Fanout:
    """The per-process (per event loop) Pub/Sub readers and their local subscriber sets."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._lines: dict[str, _Line] = {}
        self._line_of: dict[str, _Line] = {}
        # Topics whose line failed, waiting to be subscribed again by the repair task.
        self._orphans: set[str] = set()
        self._repairer: asyncio.Task[None] | None = None
        self._cluster = is_cluster()
        self._topic_at = len(keys.channel("")) - 1
        self._lock = asyncio.Lock()

    @property
    def topics(self) -> int:
        return len(self._subs)

    async def join(self, topic: str, sub: Subscriber) -> None:
        """Add ``sub`` to ``topic``; returns once Redis confirmed the channel subscription."""
        subs = self._subs.get(topic)
        if subs is not None:
            subs.add(sub)
            pending = self._pending.get(topic)
            if pending is not None:
                await asyncio.wait_for(asyncio.shield(pending), SUBSCRIBE_TIMEOUT)
            return
        self._subs[topic] = {sub}
        future = asyncio.get_running_loop().create_future()
        self._pending[topic] = future
        try:
            async with self._lock:
                await self._attach(topic)
            await asyncio.wait_for(asyncio.shield(future), SUBSCRIBE_TIMEOUT)
        except BaseException:
            self._pending.pop(topic, None)
            self.leave_nowait(topic, sub)
            raise

    def leave_nowait(self, topic: str, sub: Subscriber) -> None:
        """Remove ``sub``; the channel is unsubscribed in the background when none is left."""
        subs = self._subs.get(topic)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[topic]
            self._orphans.discard(topic)
            if topic in self._line_of:
                task = asyncio.get_running_loop().create_task(self._unsubscribe(topic))
                task.add_done_callback(_log_failure)

    async def _unsubscribe(self, topic: str) -> None:
        async with self._lock:
            line = self._line_of.get(topic)
            if topic in self._subs or line is None:
                return
            del self._line_of[topic]
            line.topics.discard(topic)
            line.leaving.add(topic)
            channel = keys.channel(topic)
            if self._cluster:
                await line.pubsub.sunsubscribe(channel)
            else:
                await line.pubsub.unsubscribe(channel)

    async def _attach(self, topic: str) -> None:
        """Subscribe ``topic``'s channel on the line of the node that owns it (under the lock)."""
        channel = keys.channel(topic)
        if self._cluster:
            cluster: Any = async_client()
            await cluster.initialize()  # once per client; routes come from its slot map
            node = cluster.get_node_from_key(channel)
            name, url = node.name, node_url(node.host, node.port)
        else:
            name, url = "", conf.REDIS_URL
        line = self._lines.get(name)
        if line is None:
            line = self._lines[name] = _Line(name, url)
        line.topics.add(topic)
        line.leaving.discard(topic)
        self._line_of[topic] = line
        try:
            if self._cluster:
                await line.pubsub.ssubscribe(channel)
            else:
                await line.pubsub.subscribe(channel)
        except BaseException:
            line.topics.discard(topic)
            if self._line_of.get(topic) is line:
                del self._line_of[topic]
            raise
        if line.reader is None:
            line.reader = asyncio.get_running_loop().create_task(self._read_loop(line))

    async def _read_loop(self, line: _Line) -> None:
        try:
            await self._pump(line)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection lost: hand the topics over, resubscribe
            logger.warning("hub pub/sub connection lost (%s); reconnecting", exc)
        if self._lines.get(line.name) is line:
            del self._lines[line.name]
        self._orphan(list(line.topics))
        line.topics.clear()
        await line.close()

    def _orphan(self, topics: list[str]) -> None:
        """Park ``topics``' subscribers (each resyncs once its channel is confirmed again)
        and have the repair task subscribe them anew."""
        loop = asyncio.get_running_loop()
        for topic in topics:
            if self._line_of.get(topic) is not None:
                del self._line_of[topic]
            subs = self._subs.get(topic)
            if not subs:
                continue
            if topic not in self._pending:
                self._pending[topic] = loop.create_future()
            # Each subscriber parks live events now and replays the log once the channel
            # is confirmed, so the outage is either filled in or a `gap`.
            for sub in tuple(subs):
                sub.resync()
            self._orphans.add(topic)
        if self._orphans and (self._repairer is None or self._repairer.done()):
            self._repairer = loop.create_task(self._repair())

    async def _repair(self) -> None:
        delay = 0.05
        while self._orphans:
            await asyncio.sleep(delay)
            try:
                async with self._lock:
                    if self._cluster:  # who owns which slot now (a replica may have taken over)
                        await async_client().nodes_manager.initialize()  # type: ignore[attr-defined]
                    for topic in list(self._orphans):
                        if topic in self._subs and topic not in self._line_of:
                            await self._attach(topic)
                        self._orphans.discard(topic)
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("hub pub/sub resubscribe failed (%s); retrying", exc)
                delay = min(delay * 2, 2.0)

    async def _pump(self, line: _Line) -> None:
        subs_by_topic = self._subs
        at = self._topic_at
        pubsub = line.pubsub
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=IDLE_PING)
            if message is None:
                # A quiet line: PING, and give up on a Redis that stopped answering them.
                if loop.time() - last_heard > 2.5 * IDLE_PING:
                    raise ConnectionError("Redis stopped answering pub/sub pings")
                await pubsub.ping()
                continue
            last_heard = loop.time()
            kind = message["type"]
            if kind == "message" or kind == "smessage":
                subs = subs_by_topic.get(message["channel"][at:-1])
                if not subs:
                    continue
                head, _, frame = message["data"].partition(" ")
                sid = None if head == EPHEMERAL_MARK else parse_sid(head)
                telemetry.EVENTS_DELIVERED.inc(len(subs))
                for sub in tuple(subs):
                    try:
                        sub.deliver(sid, frame)
                    except Exception:
                        logger.exception("hub delivery failed")
            elif kind == "subscribe" or kind == "ssubscribe":
                pending = self._pending.pop(message["channel"][at:-1], None)
                if pending is not None and not pending.done():
                    pending.set_result(None)
            elif kind == "sunsubscribe":
                topic = message["channel"][at:-1]
                if topic in line.leaving:
                    line.leaving.discard(topic)
                elif topic in line.topics:
                    # Sent by the server: the topic's slot moved to another node.
                    line.topics.discard(topic)
                    self._orphan([topic])

    async def aclose(self) -> None:
        """Stop every reader and the repair task and close the connections (a test's loop
        is about to end; a server process just exits)."""
        tasks = [line.reader for line in self._lines.values() if line.reader is not None]
        if self._repairer is not None:
            tasks.append(self._repairer)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        lines, self._lines = list(self._lines.values()), {}
        self._line_of.clear()
        self._orphans.clear()
        self._repairer = None
        for line in lines:
            await line.close()

    async def ready(self, topic: str) -> None:
        """Wait until ``topic``'s channel subscription is confirmed."""
        pending = self._pending.get(topic)
        if pending is not None:
            await asyncio.wait_for(asyncio.shield(pending), SUBSCRIBE_TIMEOUT)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("hub unsubscribe failed: %s", task.exception())


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = (
    weakref.WeakKeyDictionary()
)


def get_fanout() -> Fanout:
    """The fan-out of the running event loop (one per ASGI process)."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout()
    return fanout
