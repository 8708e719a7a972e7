"""The ``/ws/`` endpoint: a plain ASGI app, one ``Connection`` per socket.

Hot path: an event reaches ``Subscription.deliver`` from the process fan-out and is
written with ``Connection.write``, which drives the ASGI ``send`` coroutine inline. On
a writable socket uvicorn's send finishes without suspending, so a delivery costs no
task switch; only a socket whose transport is paused gets a drain task and a bounded
backlog, and one that overflows it is closed (4408) without slowing anyone else.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from asgiref.sync import sync_to_async

from taskstream.conf import conf
from taskstream.exceptions import EventTooLarge, ProtocolError
from taskstream.hub import protocol as p
from taskstream.hub.auth import session_key_from_headers, user_from_session, user_from_token
from taskstream.hub.cursor import ZERO, Cursor, StreamId, parse_cursor
from taskstream.hub.fanout import get_fanout
from taskstream.hub.log import READ_LUA, decode_replay, read_args
from taskstream.hub.origin import origin_allowed
from taskstream.hub.publish import apublish
from taskstream.hub.redis import async_client, script
from taskstream.hub.topics import TopicKind, resolve

logger = logging.getLogger("taskstream.hub")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS = {
    State.CONNECTING: {State.OPEN, State.CLOSED},
    State.OPEN: {State.CLOSING, State.CLOSED},
    State.CLOSING: {State.CLOSED},
    State.CLOSED: set(),
}


# Open sockets per signed-in user on this process (MAX_CONNECTIONS_PER_USER).
_user_sockets: Counter[Any] = Counter()


class Subscription:
    """One socket's interest in one topic: ordering, dedupe and the replay buffer."""

    __slots__ = ("buffer", "conn", "epoch", "key", "kind", "last", "resyncing", "topic")

    def __init__(self, conn: Connection, topic: str, kind: TopicKind, key: str) -> None:
        self.conn = conn
        self.topic = topic
        self.kind = kind
        self.key = key
        self.epoch = ""
        self.last: StreamId = ZERO
        # While not None, live events are parked here until the log replay is written.
        self.buffer: list[tuple[StreamId | None, str]] | None = []
        self.resyncing = False

    def deliver(self, sid: StreamId | None, frame: str) -> None:
        if self.buffer is not None:
            self.buffer.append((sid, frame))
            return
        if sid is not None:
            if sid <= self.last:
                return
            self.last = sid
        self.conn.write(frame)

    def resync(self) -> None:
        """Park live events and replay what the fan-out may have missed (after a reconnect)."""
        if self.resyncing:
            return
        self.resyncing = True
        if self.buffer is None:
            self.buffer = []
        self.conn.spawn(self.conn.resync(self))


class Connection:
    """One WebSocket: its user, subscriptions, rate limit and outbound queue."""

    # Thousands of these live per process: slots, and nothing kept that only the
    # handshake needs (idle memory per socket is a target in bench/).
    __slots__ = ("_backlog", "_backlog_bytes", "_refilled", "_send", "_strikes", "_tasks",
                 "_tokens", "state", "subs", "user")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.state = State.CONNECTING
        self.user: Any = None
        self.subs: dict[str, Subscription] = {}
        self._backlog: deque[str | dict[str, Any]] | None = None
        self._backlog_bytes = 0
        self._tasks: set[asyncio.Task[Any]] | None = None
        self._tokens = float(conf.RATE_BURST)
        self._refilled = time.monotonic()
        self._strikes = 0

    @property
    def id(self) -> str:
        """An id unique among live connections of this process (presence, logs)."""
        return f"{id(self):x}"

    # -- state machine ---------------------------------------------------------------

    def _move(self, new: State) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"connection cannot go from {self.state.value} to {new.value}")
        self.state = new

    # -- outbound --------------------------------------------------------------------

    def write(self, frame: str) -> None:
        """Queue a text frame; written inline when the socket is writable."""
        if self.state is not State.OPEN:
            return
        self._emit(frame)

    def _emit(self, item: str | dict[str, Any]) -> None:
        backlog = self._backlog
        if backlog is not None:
            if isinstance(item, str):
                self._backlog_bytes += len(item)
                if self._backlog_bytes > conf.OUTBOUND_QUEUE_BYTES:
                    self._overflow()
                    return
            backlog.append(item)
            return
        message = {"type": "websocket.send", "text": item} if isinstance(item, str) else item
        coro = self._send(message)
        if not isinstance(coro, Coroutine):  # a send that is some other awaitable
            self._backlog = deque()
            self._backlog_bytes = 0
            self.spawn(self._drain(coro, None))
            return
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except Exception:
            self._lost()
            return
        # The transport is paused (the peer reads slowly): finish this send in a task
        # and queue what follows behind it.
        self._backlog = deque()
        self._backlog_bytes = 0
        self.spawn(self._drain(coro, yielded))

    async def _drain(self, pending: Any, yielded: Any) -> None:
        try:
            if yielded is None and not isinstance(pending, Coroutine):
                await pending
            else:
                await _resume(pending, yielded)
            backlog = self._backlog
            while backlog:
                item = backlog.popleft()
                if isinstance(item, str):
                    self._backlog_bytes -= len(item)
                    await self._send({"type": "websocket.send", "text": item})
                else:
                    await self._send(item)
        except Exception:
            self._lost()
        finally:
            if self.state is State.OPEN:
                self._backlog = None
                self._backlog_bytes = 0

    def _overflow(self) -> None:
        logger.info("hub: closing slow consumer %s (outbound queue full)", self.id)
        self._detach_all()
        # Drop what is queued; the close frame goes out right after the send in flight.
        assert self._backlog is not None
        self._backlog.clear()
        self._backlog.append({"type": "websocket.close", "code": p.CLOSE_SLOW_CONSUMER})
        self._backlog_bytes = 0
        self._move(State.CLOSING)

    def close(self, code: int) -> None:
        if self.state is State.OPEN:
            self._emit({"type": "websocket.close", "code": code})
            self._detach_all()
            self._move(State.CLOSING)

    def _lost(self) -> None:
        self._detach_all()
        if self.state is not State.CLOSED:
            self.state = State.CLOSED

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub connection task failed", exc_info=task.exception())

    # -- lifecycle -------------------------------------------------------------------

    async def run(self, scope: Scope, receive: Receive) -> None:
        message = await receive()
        if message["type"] != "websocket.connect" or not await self._handshake(scope):
            return
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self.state is State.OPEN:
                        await self._on_frame(message)
                elif kind == "websocket.disconnect":
                    break
        finally:
            # Cancel this socket's pending work first: the on_leave hooks that
            # _detach_all starts must run to completion after the socket is gone.
            for task in list(self._tasks or ()):
                task.cancel()
            self._detach_all()
            self._uncount_user()
            self.state = State.CLOSED

    async def _handshake(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        if not origin_allowed(headers):
            await self._send({"type": "websocket.close", "code": 403})
            self.state = State.CLOSED
            return False
        self.user = await self._initial_user(scope, headers)
        await self._send({"type": "websocket.accept"})
        self._move(State.OPEN)
        if not self._count_user():
            return False
        self.write(p.welcome_frame(self._user_id(), conf.HEARTBEAT))
        return True

    def _count_user(self) -> bool:
        """Count this socket against its user's limit; close it (4429) when over."""
        user_id = self._user_id()
        if user_id is None:
            return True
        if _user_sockets[user_id] >= conf.MAX_CONNECTIONS_PER_USER:
            self.write(p.error_frame(p.RATE_LIMITED, "too many open sockets for this user"))
            self.close(p.CLOSE_RATE_LIMITED)
            self.user = None
            return False
        _user_sockets[user_id] += 1
        return True

    def _uncount_user(self) -> None:
        user_id = self._user_id()
        if user_id is not None:
            _user_sockets[user_id] -= 1
            if _user_sockets[user_id] <= 0:
                del _user_sockets[user_id]

    async def _initial_user(self, scope: Scope, headers: dict[bytes, bytes]) -> Any:
        from django.contrib.auth.models import AnonymousUser

        scoped = scope.get("user")
        if scoped is not None and getattr(scoped, "is_authenticated", False):
            return scoped
        if b"origin" not in headers:  # not a browser: cookies are not trusted, use `auth`
            return AnonymousUser()
        return await _in_child_task(user_from_session, session_key_from_headers(headers))

    def _user_id(self) -> Any:
        return self.user.pk if self.user is not None and self.user.is_authenticated else None

    def _detach_all(self) -> None:
        if not self.subs:
            return
        fanout = get_fanout()
        for sub in list(self.subs.values()):
            fanout.leave_nowait(sub.topic, sub)
            if sub.kind.on_leave is not None:
                self.spawn(sub.kind.on_leave(self.user, sub.key, self.id))
        self.subs.clear()

    # -- inbound ---------------------------------------------------------------------

    def _allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(float(conf.RATE_BURST),
                           self._tokens + (now - self._refilled) * conf.RATE_PER_SECOND)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self._strikes = 0
            return True
        return False

    async def _on_frame(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            raw = message.get("bytes") or b""
            if len(raw) > conf.MAX_FRAME_BYTES:
                self.close(p.CLOSE_TOO_LARGE)
                return
            self.write(p.error_frame(p.BAD_FRAME, "binary frames are not supported"))
            return
        limit = conf.MAX_FRAME_BYTES
        # UTF-8 takes 1 to 4 bytes a character: encode only when the length cannot tell.
        if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
            self.close(p.CLOSE_TOO_LARGE)
            return
        if not self._allow():
            self._strikes += 1
            if self._strikes > conf.RATE_STRIKES:
                self.close(p.CLOSE_RATE_LIMITED)
            else:
                self.write(p.error_frame(p.RATE_LIMITED, "too many frames; slow down",
                                         p.request_id(text)))
            return
        try:
            frame = p.parse_client_frame(text)
            await self._dispatch(frame)
        except ProtocolError as exc:
            self.write(p.error_frame(exc.code, exc.message, p.request_id(text)))
        except Exception:
            logger.exception("hub: frame handling failed")
            self.write(p.error_frame("unavailable", "the server could not complete this "
                                     "request; retry", p.request_id(text)))

    async def _dispatch(self, frame: Any) -> None:
        if isinstance(frame, p.Ping):
            self.write(p.pong_frame(frame.id))
        elif isinstance(frame, p.Subscribe):
            await self._subscribe(frame)
        elif isinstance(frame, p.Unsubscribe):
            self._unsubscribe(frame.topic)
            self.write(p.unsubscribed_frame(frame.topic, frame.id))
        elif isinstance(frame, p.Publish):
            await self._publish(frame)
        elif isinstance(frame, p.Auth):
            await self._auth(frame)

    async def _subscribe(self, frame: p.Subscribe) -> None:
        topic = frame.topic
        kind, key = resolve(topic)
        since = parse_cursor(frame.since) if frame.since is not None else None
        if topic in self.subs:
            self._unsubscribe(topic)  # a fresh subscribe replaces the old one (new `since`)
        elif len(self.subs) >= conf.MAX_SUBSCRIPTIONS:
            raise ProtocolError(p.NOT_ALLOWED,
                                f"at most {conf.MAX_SUBSCRIPTIONS} subscriptions per socket")
        if not await kind.may_read(self.user, key):
            raise ProtocolError(p.FORBIDDEN, f"not allowed to read {topic!r}")
        sub = Subscription(self, topic, kind, key)
        self.subs[topic] = sub
        try:
            await get_fanout().join(topic, sub)
            extra = None
            if kind.on_join is not None:
                extra = await kind.on_join(self.user, key, self.id)
        except BaseException:
            if self.subs.get(topic) is sub:
                del self.subs[topic]
                get_fanout().leave_nowait(topic, sub)
            raise
        if self.subs.get(topic) is not sub:
            return  # unsubscribed or closed while we waited
        await self.catch_up(sub, since, announce=True, frame_id=frame.id, extra=extra)

    async def catch_up(self, sub: Subscription, since: Cursor | None, *, announce: bool = False,
                       frame_id: int | str | None = None,
                       extra: dict[str, Any] | None = None) -> None:
        """Write the log after ``since`` (or a ``gap``), then release buffered live events.

        Runs while ``sub`` already parks live events in its buffer, so nothing published
        during the read is missed, and ids already written are skipped: exactly once.
        ``announce`` writes the ``subscribed`` frame first (not on a silent resync).
        """
        if sub.buffer is None:
            sub.buffer = []
        keys_, args = read_args(sub.topic, since)
        raw = await script(async_client(), READ_LUA)(keys=keys_, args=args)
        if self.subs.get(sub.topic) is not sub:
            return  # unsubscribed or closed while we read
        replay = decode_replay(json.dumps(sub.topic), since, raw)
        sub.epoch = replay.latest.epoch
        if announce:
            self.write(p.subscribed_frame(sub.topic, str(replay.latest), frame_id, extra))
        if replay.gap:
            self.write(p.gap_frame(sub.topic, str(replay.latest)))
        else:
            for _sid, event in replay.events:
                self.write(event)
        sub.last = replay.latest.sid
        buffered, sub.buffer = sub.buffer, None
        for sid, event in buffered:
            sub.deliver(sid, event)

    async def resync(self, sub: Subscription) -> None:
        """Replay what a Pub/Sub outage may have hidden; if Redis stays away, hang up.

        Closing (1013, try again later) is the safe fallback: the client reconnects and
        resubscribes with its last cursor, so it still gets every event or a ``gap``.
        """
        delay = 0.1
        try:
            for _attempt in range(6):
                try:
                    await get_fanout().ready(sub.topic)
                    await self.catch_up(sub, Cursor(sub.epoch, sub.last))
                    return
                except Exception as exc:
                    logger.warning("hub: resync of %s failed (%s); retrying", sub.topic, exc)
                    await asyncio.sleep(delay)
                    delay *= 2
            self.close(p.CLOSE_TRY_AGAIN)
        finally:
            sub.resyncing = False

    def _unsubscribe(self, topic: str) -> None:
        sub = self.subs.pop(topic, None)
        if sub is not None:
            get_fanout().leave_nowait(topic, sub)
            if sub.kind.on_leave is not None:
                self.spawn(sub.kind.on_leave(self.user, sub.key, self.id))

    async def _publish(self, frame: p.Publish) -> None:
        kind, key = resolve(frame.topic)
        if kind.on_publish is None or frame.event not in kind.client_events:
            raise ProtocolError(p.NOT_ALLOWED,
                                f"clients may not publish {frame.event!r} to {frame.topic!r}")
        if not await kind.may_read(self.user, key):
            raise ProtocolError(p.FORBIDDEN, f"not allowed to publish to {frame.topic!r}")
        publication = await kind.on_publish(self.user, key, frame.event, frame.data)
        try:
            cursor = await apublish(frame.topic, publication.event, publication.data,
                                    ephemeral=publication.ephemeral)
        except EventTooLarge as exc:
            # Not "unavailable": retrying cannot help, and the hook may have stored it.
            raise ProtocolError(p.TOO_LARGE, str(exc)) from exc
        self.write(p.published_frame(frame.topic, cursor, frame.id))

    async def _auth(self, frame: p.Auth) -> None:
        user = await _in_child_task(user_from_token, frame.token)
        if user is None:
            raise ProtocolError(p.UNAUTHENTICATED, "token is invalid or expired")
        if self._user_id() is not None:
            if self._user_id() != user.pk:
                raise ProtocolError(p.NOT_ALLOWED, "socket is signed in as another user")
        else:
            self.user = user
            if not self._count_user():
                return
        self.write(p.welcome_frame(self._user_id(), conf.HEARTBEAT))


async def _in_child_task(func: Callable[..., Any], *args: Any) -> Any:
    """``sync_to_async(func)(*args)`` in a task of its own.

    asgiref leaves context variables behind on the task that awaits it; on a socket's
    long-lived task that is ~400 bytes held for the socket's whole life.
    """
    return await asyncio.get_running_loop().create_task(sync_to_async(func)(*args))


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
    """Finish a coroutine that was stepped by hand and suspended on ``yielded``.

    Plays the part of an asyncio Task for it: wait for the future it yielded, then
    step it again, until it returns. Its exceptions propagate to the caller.
    """
    try:
        while True:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                # What Task.__step does with a future a coroutine yields: clear the
                # "blocking" flag, then wait for it to be done.
                yielded._asyncio_future_blocking = False
                try:
                    await yielded
                except asyncio.CancelledError:
                    if not yielded.done():
                        raise  # this task was cancelled, not the future
                except BaseException:  # the coroutine sees it when stepped again
                    pass
            try:
                yielded = coro.send(None)
            except StopIteration:
                return
    finally:
        coro.close()


class HubEndpoint:
    """The ASGI application serving protocol v1.

    ``HubEndpoint(path="/ws/")`` serves that path itself and refuses others (403), so it
    can sit directly under ``ProtocolTypeRouter`` without Channels' ``URLRouter`` (whose
    per-socket scope copies cost about 1.4 KB of every idle socket). Inside a
    ``URLRouter``, use ``HubEndpoint()``.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError("the taskstream hub endpoint only serves WebSocket connections")
        if self.path is not None and scope.get("path") != self.path:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 403})
            return
        await Connection(send).run(scope, receive)


application = HubEndpoint()
