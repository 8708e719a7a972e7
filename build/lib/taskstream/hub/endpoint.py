"""The ``/ws/`` endpoint: a plain ASGI app, one :class:`Connection` per socket.

The work is split by job: :mod:`~taskstream.hub.handshake` (origin, user),
:mod:`~taskstream.hub.connection` (state machine, inbound frames, limits),
:mod:`~taskstream.hub.subscription` (authorization, hooks, replay, live delivery),
:mod:`~taskstream.hub.outbound` (writing to the socket, slow consumers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from taskstream.hub.connection import Connection, State

__all__ = ["Connection", "HubEndpoint", "State", "application"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class HubEndpoint:
    """The ASGI application serving protocol v1.

    ``HubEndpoint(path="/ws/")`` serves that path itself and refuses others (403), so it
    can sit directly under ``ProtocolTypeRouter`` without Channels' ``URLRouter`` (whose
    per-socket scope copies cost about 1.4 KB of every idle socket). Inside a
    ``URLRouter``, use ``HubEndpoint()``.

    ``HubEndpoint(path="/ws/", others=app)`` hands every other WebSocket path to ``app``: the
    project's own Channels stack (``AllowedHostsOriginValidator(AuthMiddlewareStack(
    URLRouter(...)))``) beside the hub, which does its own Origin and auth (docs/install.md).
    """

    def __init__(self, path: str | None = None, *,
                 others: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None) -> None:
        if others is not None and path is None:
            raise ValueError("HubEndpoint(others=...) needs the hub's own path, e.g. '/ws/'")
        self.path = path
        self.others = others

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError("the taskstream hub endpoint only serves WebSocket connections")
        if self.path is not None and scope.get("path") != self.path:
            if self.others is not None:
                await self.others(scope, receive, send)
                return
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 403})
            return
        await Connection(send).run(scope, receive)


application = HubEndpoint()
