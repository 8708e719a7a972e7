"""A socket's subscriptions: authorization, join/leave hooks, replay, live delivery.

Each :class:`Subscription` is what the fan-out delivers to. It parks live events while
the log is read (the first catch-up, or a resync after the process's Pub/Sub
reconnected), writes the replay, then releases what it parked, skipping ids already
written: exactly once. Everything goes out through the socket's :class:`Outbound`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from taskstream import telemetry
from taskstream.conf import conf
from taskstream.exceptions import ProtocolError
from taskstream.hub import protocol as p
from taskstream.hub.cursor import ZERO, Cursor, StreamId, parse_cursor, parse_sid
from taskstream.hub.fanout import get_fanout
from taskstream.hub.log import READ_LUA, decode_replay, read_args
from taskstream.hub.outbound import Outbound
from taskstream.hub.redis import async_client, script
from taskstream.hub.topics import TopicKind, resolve

logger = logging.getLogger("taskstream.hub")



class Spawner(Protocol):
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...


# Log entries per replay read: the first read is small (a resubscribe usually needs a
# few events); later ones carry about OUTBOUND_QUEUE_BYTES of the biggest entry seen.
_FIRST_PAGE = 16
_MAX_PAGE = 1000


async def _read_page(topic: str, since: Cursor | None, count: int) -> list[Any]:
    """One atomic read of the log: ``[epoch, latest id, up to count entries after since]``."""
    keys_, args = read_args(topic, since)
    args[1] = count  # READ_LUA's ARGV[2]: how many entries to return
    raw: list[Any] = await script(async_client(), READ_LUA)(keys=keys_, args=args)
    return raw


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# Subscription phases.
_STARTING = 0  # the first catch-up has not finished: nothing to resync yet
_LIVE = 1
_RESYNCING = 2


class Subscription:
    """One socket's interest in one topic: ordering, dedupe and the replay buffer."""

    __slots__ = ("buffer", "epoch", "key", "kind", "last", "owner", "parked", "phase", "stale",
                 "topic")

    def __init__(self, owner: Subscriptions, topic: str, kind: TopicKind, key: str) -> None:
        self.owner = owner
        self.topic = topic
        self.kind = kind
        self.key = key
        self.epoch = ""
        self.last: StreamId = ZERO
        # While not None, live events are parked here until the log replay is written.
        self.buffer: list[tuple[StreamId | None, str]] | None = []
        self.parked = 0  # bytes in buffer: bounded like the outbound queue
        self.phase = _STARTING
        # The Pub/Sub reconnected during the first catch-up: resync right after it.
        self.stale = False

    @property
    def active(self) -> bool:
        return self.owner.subs.get(self.topic) is self

    def deliver(self, sid: StreamId | None, frame: str) -> None:
        if self.buffer is not None:
            self.buffer.append((sid, frame))
            self.parked += len(frame)
            if self.parked > conf.OUTBOUND_QUEUE_BYTES:
                # Live traffic outran a replay the client is slow to read: a slow consumer.
                telemetry.SLOW_CONSUMERS.inc()
                self.owner.out.close(p.CLOSE_SLOW_CONSUMER)
            return
        if sid is not None:
            if sid <= self.last:
                return
            self.last = sid
        self.owner.out.write(frame)

    def resync(self) -> None:
        """Park live events and replay what the fan-out may have missed (after a reconnect).

        A subscription still on its first catch-up has no position to resync from yet
        (an empty epoch would read as a ``gap``): it resyncs once that catch-up is done.
        """
        if self.phase != _LIVE:
            # Still on its first catch-up, or on a resync whose read may predate the new
            # Pub/Sub connection: run one more resync when that is done.
            self.stale = True
            return
        self.phase = _RESYNCING
        if self.buffer is None:
            self.buffer = []
        self.owner.spawn(self.owner.resync(self))


class Subscriptions:
    """The subscriptions of one socket, keyed by topic, and the user they act for."""

    __slots__ = ("_spawner", "out", "subs", "user")

    def __init__(self, out: Outbound, spawner: Spawner) -> None:
        self.out = out
        self._spawner = spawner
        self.user: Any = None
        self.subs: dict[str, Subscription] = {}

    @property
    def conn_id(self) -> str:
        """An id unique among live sockets of this process (presence hooks, logs)."""
        return f"{id(self):x}"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._spawner.spawn(coro)

    async def subscribe(self, frame: p.Subscribe) -> None:
        topic = frame.topic
        kind, key = resolve(topic)
        since = parse_cursor(frame.since) if frame.since is not None else None
        if topic in self.subs:
            self.unsubscribe(topic)  # a fresh subscribe replaces the old one (new `since`)
        elif len(self.subs) >= conf.MAX_SUBSCRIPTIONS:
            raise ProtocolError(p.NOT_ALLOWED,
                                f"at most {conf.MAX_SUBSCRIPTIONS} subscriptions per socket")
        if not await kind.may_read(self.user, key):
            raise ProtocolError(p.FORBIDDEN, f"not allowed to read {topic!r}")
        sub = Subscription(self, topic, kind, key)
        self.subs[topic] = sub
        telemetry.HUB_SUBSCRIPTIONS.inc()
        fanout = get_fanout()
        joined = False
        try:
            await fanout.join(topic, sub)
            extra = None
            if kind.on_join is not None:
                extra = await kind.on_join(self.user, key, self.conn_id)
            joined = True
            if not sub.active:
                return  # unsubscribed or closed while we waited
            await self.catch_up(sub, since, announce=True, frame_id=frame.id, extra=extra)
        except BaseException:
            # Whatever failed (Redis, a hook, a cancel), leave nothing half-made behind:
            # a subscription that never finished its catch-up would park live events
            # forever and count against MAX_SUBSCRIPTIONS.
            if sub.active:
                del self.subs[topic]
                telemetry.HUB_SUBSCRIPTIONS.dec()
                if joined:
                    self._leave(sub)
                else:
                    fanout.leave_nowait(topic, sub)
            raise

    async def catch_up(self, sub: Subscription, since: Cursor | None, *, announce: bool = False,
                       frame_id: int | str | None = None,
                       extra: dict[str, Any] | None = None) -> None:
        """Write the log after ``since`` (or a ``gap``), then release buffered live events.

        Runs while ``sub`` parks live events in its buffer, so nothing published during
        the read is missed, and ids already written are skipped: exactly once.
        ``announce`` writes the ``subscribed`` frame first (not on a silent resync).

        The log is read and written in pages that wait for the socket to take what it
        was given, so a replay holds about one page and ``OUTBOUND_QUEUE_BYTES`` per
        socket, however much the log holds and however slowly the client reads.
        """
        if sub.buffer is None:
            sub.buffer = []
        raw = await _read_page(sub.topic, since, _FIRST_PAGE)  # may fail: nothing written
        if not sub.active:
            return  # unsubscribed or closed while we read
        latest = Cursor(_text(raw[0]), parse_sid(raw[1]))
        sub.epoch = latest.epoch
        if announce:
            self.out.write(p.subscribed_frame(sub.topic, str(latest), frame_id, extra))
        if since is None:
            sub.last = latest.sid
        else:
            telemetry.REPLAYS.inc()
            try:
                await self._replay(sub, since, latest.sid, raw)
            except Exception as exc:  # a later page failed: the client resumes on its own
                logger.warning("hub: replay of %s failed (%s); closing", sub.topic, exc)
                self.out.close(p.CLOSE_TRY_AGAIN)
                return
            if not sub.active:
                return
        buffered, sub.buffer = sub.buffer, None
        sub.parked = 0
        sub.phase = _LIVE
        for sid, event in buffered:
            sub.deliver(sid, event)
        if sub.stale and sub.active:  # the Pub/Sub reconnected while we read: once more
            sub.stale = False
            sub.resync()

    async def _replay(self, sub: Subscription, since: Cursor, target: StreamId,
                      raw: list[Any]) -> None:
        """Write the entries after ``since`` up to ``target`` page by page, or a ``gap``."""
        out = self.out
        topic_json = json.dumps(sub.topic)
        limit = conf.OUTBOUND_QUEUE_BYTES
        position = since
        biggest = 1
        while True:
            entries = raw[2]
            # Judge one page as decode_replay judges a whole replay: a page ends at its own
            # last entry (the log's latest entry may be further on).
            end = entries[-1][0] if entries else raw[1]
            page = decode_replay(topic_json, position, [raw[0], end, entries])
            if page.gap:
                latest = Cursor(_text(raw[0]), parse_sid(raw[1]))
                telemetry.GAPS.inc()
                out.write(p.gap_frame(sub.topic, str(latest)))
                sub.epoch, sub.last = latest.epoch, latest.sid
                return
            for sid, event in page.events:
                size = len(event)
                biggest = max(biggest, size)
                if out.backed_up and out.backlog_bytes + size > limit:
                    await out.wait_writable()  # the socket has to take the last page first
                    if not sub.active:
                        return
                out.write(event)
                sub.last = sid
            if not page.events or sub.last >= target:
                sub.last = max(sub.last, target)
                return
            position = Cursor(position.epoch, sub.last)
            count = max(_FIRST_PAGE, min(_MAX_PAGE, limit // biggest))
            raw = await _read_page(sub.topic, position, count)
            if not sub.active:
                return

    async def resync(self, sub: Subscription) -> None:
        """Replay what a Pub/Sub outage may have hidden; if Redis stays away, hang up.

        Closing (1013, try again later) is the safe fallback: the client reconnects and
        resubscribes with its last cursor, so it still gets every event or a ``gap``.
        """
        delay = 0.1
        for _attempt in range(6):
            try:
                await get_fanout().ready(sub.topic)
                await self.catch_up(sub, Cursor(sub.epoch, sub.last))
                return
            except Exception as exc:
                logger.warning("hub: resync of %s failed (%s); retrying", sub.topic, exc)
                await asyncio.sleep(delay)
                delay *= 2
        self.out.close(p.CLOSE_TRY_AGAIN)

    def unsubscribe(self, topic: str) -> None:
        sub = self.subs.pop(topic, None)
        if sub is not None:
            telemetry.HUB_SUBSCRIPTIONS.dec()
            self._leave(sub)

    def clear(self) -> None:
        """Leave every topic (the socket is closing or gone)."""
        if not self.subs:
            return
        subs = list(self.subs.values())
        self.subs.clear()
        telemetry.HUB_SUBSCRIPTIONS.dec(len(subs))
        for sub in subs:
            self._leave(sub)

    def _leave(self, sub: Subscription) -> None:
        get_fanout().leave_nowait(sub.topic, sub)
        on_leave = sub.kind.on_leave
        if on_leave is not None:
            self.spawn(on_leave(self.user, sub.key, self.conn_id))

