"""One WebSocket from accept to close: its state machine, inbound frames and limits.

The data flows one way: the handshake says who the user is, the connection reads
client frames (size, rate) and dispatches them, subscriptions deliver events, and
everything leaves through the socket's :class:`~taskstream.hub.outbound.Outbound`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from taskstream import telemetry
from taskstream.conf import conf
from taskstream.exceptions import EventTooLarge, ProtocolError
from taskstream.hub import handshake
from taskstream.hub import protocol as p
from taskstream.hub.auth import identity_from_token
from taskstream.hub.database import db_call
from taskstream.hub.limits import RateLimit, bytes_too_large, quota, text_too_large
from taskstream.hub.outbound import Outbound, Send
from taskstream.hub.publish import apublish
from taskstream.hub.revocation import get_registry
from taskstream.hub.subscription import Subscriptions
from taskstream.hub.topics import resolve

logger = logging.getLogger("taskstream.hub")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


TRANSITIONS = {
    State.CONNECTING: frozenset({State.OPEN, State.CLOSED}),
    State.OPEN: frozenset({State.CLOSING, State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class Connection:
    """One WebSocket: its state, user, rate limit, subscriptions and outbound path."""

    # Thousands of these live per process: slots, and nothing kept that only the
    # handshake needs (idle memory per socket is a target in bench/).
    __slots__ = ("_address", "_anonymous", "_send", "_tasks", "limit", "out", "session", "state",
                 "subs")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.state = State.CONNECTING
        self.out = Outbound(send, self)
        self.subs = Subscriptions(self.out, self)
        self.limit = RateLimit()
        self._tasks: set[asyncio.Task[Any]] | None = None
        # One-way name of the session that signed the socket in ("": none): its logout
        # closes the socket (see taskstream.hub.revocation).
        self.session = ""
        # Whether this socket holds an anonymous slot, and for which client address.
        self._anonymous = False
        self._address: str | None = None

    @property
    def user(self) -> Any:
        return self.subs.user

    @property
    def id(self) -> str:
        """An id unique among live connections of this process (presence, logs)."""
        return self.subs.conn_id

    # -- state machine ---------------------------------------------------------------

    def _move(self, new: State) -> None:
        """The only place ``state`` changes: refuses a move the table does not allow."""
        if new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"connection cannot go from {self.state.value} to {new.value}")
        if new is State.OPEN:
            telemetry.HUB_CONNECTIONS.inc()
        elif self.state is State.OPEN:
            telemetry.HUB_CONNECTIONS.dec()
        self.state = new
        self.out.open = new is State.OPEN

    def _end(self) -> None:
        if self.state is not State.CLOSED:
            self._move(State.CLOSED)

    # -- what the outbound path reports ----------------------------------------------

    def on_close(self) -> None:
        self.subs.clear()
        if self.state is State.OPEN:
            self._move(State.CLOSING)

    def on_lost(self) -> None:
        self.subs.clear()
        self._end()

    def close(self, code: int, reason: str = "") -> None:
        self.out.close(code, reason)

    # -- what revocations ask (taskstream.hub.revocation) --------------------------------

    def revoke(self, message: str) -> None:
        """What signed this socket in no longer holds: say so and close (4401)."""
        if self.state is State.OPEN:
            self.out.write(p.error_frame(p.UNAUTHENTICATED, message))
            self.close(p.CLOSE_UNAUTHENTICATED)

    async def reauthorize(self, topic: str) -> None:
        """Check the subscription to ``topic`` again; drop it when no longer allowed."""
        sub = self.subs.subs.get(topic)
        if sub is None or await sub.kind.may_read(self.user, sub.key):
            return
        if self.subs.subs.get(topic) is sub and self.state is State.OPEN:
            self.subs.unsubscribe(topic)
            self.out.write(p.revoked_frame(topic, f"no longer allowed to read {topic!r}"))

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
        if message["type"] != "websocket.connect":
            self._end()
            return
        try:
            user, self.session = await handshake.authenticate(scope)
        except handshake.Refused as refused:
            await self._send({"type": "websocket.close", "code": refused.status})
            self._end()
            return
        self.subs.user = user
        await self._send({"type": "websocket.accept"})
        self._move(State.OPEN)
        try:
            if not (self._count_user() and self._count_anonymous(scope)):
                return
            if self._user_id() is not None:
                await get_registry().add(self)
            self.out.write(p.welcome_frame(self._user_id(), conf.HEARTBEAT))
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self.state is State.OPEN:
                        await self._on_frame(message)
                elif kind == "websocket.disconnect":
                    break
        finally:
            # Cancel this socket's pending work first: the on_leave hooks that clear()
            # starts must run to completion after the socket is gone.
            for task in list(self._tasks or ()):
                task.cancel()
            self.subs.clear()
            if self._user_id() is not None:
                get_registry().discard(self)
            self._uncount_user()
            self._uncount_anonymous()
            self._end()

    def _count_user(self) -> bool:
        """Count this socket against its user's limit; close it (4430) when over."""
        user_id = self._user_id()
        if user_id is None:
            return True
        if not quota.acquire(user_id):
            # Not a rate: a cap that frees up when the user closes another socket.
            self.out.write(p.error_frame(p.TOO_MANY_CONNECTIONS,
                                         "too many open connections for this user"))
            self.close(p.CLOSE_TOO_MANY_CONNECTIONS, "too many connections")
            self.subs.user = None  # not counted: nothing to release
            return False
        return True

    def _uncount_user(self) -> None:
        user_id = self._user_id()
        if user_id is not None:
            quota.release(user_id)

    def _count_anonymous(self, scope: Scope) -> bool:
        """Count an anonymous socket against the process's and its address's limits.

        The address is what the server puts in the scope: the peer, or the client a
        trusted proxy names (uvicorn's ``FORWARDED_ALLOW_IPS``).
        """
        if self._user_id() is not None:
            return True
        client = scope.get("client")
        address = str(client[0]) if client else None
        if not quota.acquire_anonymous(address):
            self.out.write(p.error_frame(p.RATE_LIMITED, "too many anonymous sockets; sign in "
                                         "or retry later"))
            self.close(p.CLOSE_TOO_MANY_ANONYMOUS)
            return False
        self._anonymous, self._address = True, address
        return True

    def _uncount_anonymous(self) -> None:
        if self._anonymous:
            quota.release_anonymous(self._address)
            self._anonymous, self._address = False, None

    def _user_id(self) -> Any:
        user = self.subs.user
        return user.pk if user is not None and user.is_authenticated else None

    # -- inbound ---------------------------------------------------------------------

    async def _on_frame(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            raw = message.get("bytes") or b""
            too_large = bytes_too_large(raw)
        else:
            too_large = text_too_large(text)
        if too_large:
            self.close(p.CLOSE_TOO_LARGE)
            return
        # Every frame counts, binary ones too: answering them is work an attacker can
        # ask for as fast as it can send.
        if not self.limit.allow():
            if self.limit.exhausted:
                self.close(p.CLOSE_RATE_LIMITED)
            else:
                self.out.write(p.error_frame(p.RATE_LIMITED, "too many frames; slow down",
                                             None if text is None else p.request_id(text)))
            return
        if text is None:
            self.out.write(p.error_frame(p.BAD_FRAME, "binary frames are not supported"))
            return
        try:
            frame = p.parse_client_frame(text)
            await self._dispatch(frame)
        except ProtocolError as exc:
            self.out.write(p.error_frame(exc.code, exc.message, p.request_id(text)))
        except Exception:
            logger.exception("hub: frame handling failed")
            self.out.write(p.error_frame("unavailable", "the server could not complete this "
                                         "request; retry", p.request_id(text)))

    async def _dispatch(self, frame: Any) -> None:
        if isinstance(frame, p.Ping):
            self.out.write(p.pong_frame(frame.id))
        elif isinstance(frame, p.Subscribe):
            await self.subs.subscribe(frame)
        elif isinstance(frame, p.Unsubscribe):
            self.subs.unsubscribe(frame.topic)
            self.out.write(p.unsubscribed_frame(frame.topic, frame.id))
        elif isinstance(frame, p.Publish):
            await self._publish(frame)
        elif isinstance(frame, p.Auth):
            await self._auth(frame)

    async def _publish(self, frame: p.Publish) -> None:
        kind, key = resolve(frame.topic)
        if kind.on_publish is None or frame.event not in kind.client_events:
            raise ProtocolError(p.NOT_ALLOWED,
                                f"clients may not publish {frame.event!r} to {frame.topic!r}")
        user = self.subs.user
        if not await kind.may_read(user, key):
            raise ProtocolError(p.FORBIDDEN, f"not allowed to publish to {frame.topic!r}")
        publication = await kind.on_publish(user, key, frame.event, frame.data)
        try:
            cursor = await apublish(frame.topic, publication.event, publication.data,
                                    ephemeral=publication.ephemeral, key=publication.key)
        except EventTooLarge as exc:
            # Not "unavailable": retrying cannot help, and the hook may have stored it.
            raise ProtocolError(p.TOO_LARGE, str(exc)) from exc
        self.out.write(p.published_frame(frame.topic, cursor, frame.id))

    async def _auth(self, frame: p.Auth) -> None:
        identity = await db_call(identity_from_token, frame.token)
        if identity is None:
            raise ProtocolError(p.UNAUTHENTICATED, "token is invalid or expired")
        user, session = identity
        if self._user_id() is not None:
            if self._user_id() != user.pk:
                raise ProtocolError(p.NOT_ALLOWED, "socket is signed in as another user")
        else:
            self.subs.user = user
            self._uncount_anonymous()  # counted as its user from now on
            if not self._count_user():
                return
            self.session = session
            await get_registry().add(self)
        self.out.write(p.welcome_frame(self._user_id(), conf.HEARTBEAT))
