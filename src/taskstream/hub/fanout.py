"""Live fan-out: one Redis Pub/Sub connection per process, shared by every local socket.

A topic's channel is subscribed while at least one local socket wants it. Each event
arrives once per process, already serialized by the publish script, and is handed to
every local subscriber as the same string. If the Pub/Sub connection drops (Redis
restarted, network blip) the fan-out reconnects, resubscribes and asks every
subscriber to resync from the log, so nothing published meanwhile is silently lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, Protocol

from taskstream import telemetry
from taskstream.hub import keys
from taskstream.hub.cursor import StreamId, parse_sid
from taskstream.hub.log import EPHEMERAL_MARK
from taskstream.hub.redis import pubsub_client

logger = logging.getLogger("taskstream.hub")

SUBSCRIBE_TIMEOUT = 10.0
IDLE_PING = 15.0


class Subscriber(Protocol):
    def deliver(self, sid: StreamId | None, frame: str) -> None: ...

    def resync(self) -> None: ...


class Fanout:
    """The per-process (per event loop) Pub/Sub reader and its local subscriber sets."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._client: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._prefix_len = len(keys.channel(""))
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
                if self._pubsub is None:
                    self._open()
                await self._pubsub.subscribe(keys.channel(topic))
                if self._reader is None:
                    self._reader = asyncio.get_running_loop().create_task(self._read_loop())
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
            if self._pubsub is not None:
                task = asyncio.get_running_loop().create_task(self._unsubscribe(topic))
                task.add_done_callback(_log_failure)

    async def _unsubscribe(self, topic: str) -> None:
        async with self._lock:
            if topic not in self._subs and self._pubsub is not None:
                await self._pubsub.unsubscribe(keys.channel(topic))

    def _open(self) -> None:
        self._client = pubsub_client()
        self._pubsub = self._client.pubsub()

    async def _close(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        with contextlib.suppress(Exception):
            if pubsub is not None:
                await pubsub.aclose()
        with contextlib.suppress(Exception):
            if client is not None:
                await client.aclose()

    async def _read_loop(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: reconnect, resubscribe, resync
                logger.warning("hub pub/sub connection lost (%s); reconnecting", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            with contextlib.suppress(Exception):
                await self._reconnect()
                delay = 0.05

    async def _pump(self) -> None:
        subs_by_topic = self._subs
        prefix_len = self._prefix_len
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        while True:
            message = await self._pubsub.get_message(timeout=IDLE_PING)
            if message is None:
                # A quiet line: PING, and give up on a Redis that stopped answering them.
                if loop.time() - last_heard > 2.5 * IDLE_PING:
                    raise ConnectionError("Redis stopped answering pub/sub pings")
                await self._pubsub.ping()
                continue
            last_heard = loop.time()
            kind = message["type"]
            if kind == "message":
                subs = subs_by_topic.get(message["channel"][prefix_len:])
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
            elif kind == "subscribe":
                pending = self._pending.pop(message["channel"][prefix_len:], None)
                if pending is not None and not pending.done():
                    pending.set_result(None)

    async def _reconnect(self) -> None:
        async with self._lock:
            await self._close()
            self._open()
            topics = list(self._subs)
            loop = asyncio.get_running_loop()
            for topic in topics:
                if topic not in self._pending:
                    self._pending[topic] = loop.create_future()
                # Each subscriber parks live events now and replays the log once the
                # channel is confirmed, so the outage is either filled in or a `gap`.
                for sub in tuple(self._subs[topic]):
                    sub.resync()
            if topics:
                await self._pubsub.subscribe(*(keys.channel(t) for t in topics))
            else:
                await self._pubsub.ping()

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
