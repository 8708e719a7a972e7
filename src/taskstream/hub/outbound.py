"""One socket's outbound path: frames written inline while the socket keeps up.

Hot path: the fan-out hands an event to ``Outbound.write``, which steps the ASGI
``send`` coroutine once, inline (``coro.send(None)``, the generator protocol). On a
writable socket uvicorn's send finishes in that one step, so a delivery costs no task
switch and no task. Only when the send has to wait (uvicorn waits while its transport
is paused: the peer reads slowly) is the rest of that send, and everything written
after it, handed to one drain task behind a bounded backlog; a socket that overflows
the backlog is closed (4408) without slowing anyone else.

Why not ``await`` the send in the fan-out loop: an ASGI server does not say in advance
whether a send will wait, and one paused socket would then hold up every socket after
it. Stepping the coroutine tells at no cost; the suspended send is finished with public
asyncio only (``asyncio.wait`` on the future it yielded, then stepping it again).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from taskstream import telemetry
from taskstream.conf import conf
from taskstream.hub import protocol as p

logger = logging.getLogger("taskstream.hub")

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Owner(Protocol):
    """What an :class:`Outbound` reports to (the connection)."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    def on_close(self) -> None:
        """This side started the close (asked to, or overflow)."""

    def on_lost(self) -> None:
        """A send failed: the peer is gone."""


class Outbound:
    """Writes frames to one socket; bounded backlog; reports a close or a lost socket.

    Writes are dropped unless ``open``; the owner opens it once the socket is accepted.
    """

    # Thousands of these live per process: slots, and the owner's callbacks reached
    # through one reference instead of a bound method each.
    __slots__ = ("_backlog", "_backlog_bytes", "_drained", "_owner", "_send", "open")

    def __init__(self, send: Send, owner: Owner) -> None:
        self._send = send
        self._owner = owner
        self._backlog: deque[str | dict[str, Any]] | None = None
        self._backlog_bytes = 0
        self._drained: asyncio.Event | None = None
        self.open = False

    @property
    def backlog_bytes(self) -> int:
        """Bytes of text frames waiting behind a send in flight (0 when writable)."""
        return self._backlog_bytes

    @property
    def backed_up(self) -> bool:
        return self._backlog is not None

    def write(self, frame: str) -> None:
        """Queue a text frame; written inline when the socket is writable."""
        if self.open:
            self._emit(frame)

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame after what is already queued; later writes are dropped."""
        if self.open:
            self._emit({"type": "websocket.close", "code": code, "reason": reason})
            self.open = False
            self._owner.on_close()

    async def wait_writable(self) -> None:
        """Return once nothing waits behind a send in flight (or the socket is done)."""
        while self.open and self._backlog is not None:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()

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
            self._owner.spawn(self._drain(coro, None))
            return
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except Exception:
            self._lost()
            return
        # The send has to wait (the transport is paused): finish it in a task and queue
        # what follows behind it.
        self._backlog = deque()
        self._owner.spawn(self._drain(coro, yielded))

    async def _drain(self, pending: Any, yielded: Any) -> None:
        try:
            if isinstance(pending, Coroutine):
                await _finish(pending, yielded)
            else:
                await pending
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
            if self.open:
                self._backlog = None
                self._backlog_bytes = 0
            if self._drained is not None:
                self._drained.set()
                self._drained = None

    def _overflow(self) -> None:
        logger.info("hub: closing a slow consumer (outbound queue full)")
        telemetry.SLOW_CONSUMERS.inc()
        # Drop what is queued; the close frame goes out right after the send in flight.
        assert self._backlog is not None
        self._backlog.clear()
        self._backlog_bytes = 0
        self._backlog.append({"type": "websocket.close", "code": p.CLOSE_SLOW_CONSUMER})
        self.open = False
        self._owner.on_close()

    def _lost(self) -> None:
        self.open = False
        if self._drained is not None:
            self._drained.set()
        self._owner.on_lost()


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
    """Finish a coroutine stepped by hand that suspended on ``yielded``.

    Plays the part of an asyncio Task for it, with public API only: wait until the
    future it yielded is done, then step it again, until it returns. Its exceptions
    propagate to the caller; if the caller is cancelled, the coroutine is closed.
    """
    try:
        while True:
            if asyncio.isfuture(yielded):
                await asyncio.wait((yielded,))
            else:  # a bare yield (asyncio.sleep(0)): give the loop one turn
                await asyncio.sleep(0)
            try:
                yielded = coro.send(None)
            except StopIteration:
                return
    finally:
        coro.close()
