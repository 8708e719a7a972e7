"""The floor for idle memory: a bare ASGI WebSocket app under the hub's uvicorn options.

It accepts, keeps the socket and waits for the disconnect: no Django, no routing, no
Redis. Whatever the hub costs per idle socket above this is the hub's own.
"""

from __future__ import annotations

from typing import Any


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": '{"type":"welcome"}'})
    while (await receive())["type"] != "websocket.disconnect":
        pass
