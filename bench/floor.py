"""The floor: a bare ASGI WebSocket app under the hub's uvicorn options.

It accepts, keeps the socket and waits for the disconnect: no Django, no routing, no
log, no cursor. Whatever the hub costs per idle socket above this is the hub's own.

It is also the floor of the publish → client hop: with ``NAIVE_REDIS_URL`` set, the
process holds one Redis Pub/Sub connection (opened with the first socket, before any
measurement) on :data:`HOP_CHANNEL` and writes each message, as it came, to every open
socket. ``python -m bench.publisher floor`` sends there with a plain ``PUBLISH`` of the
same payload the hub publisher gives ``taskstream.hub.publish``. The hub's hop minus
this one is what the log, the cursor, the subscription and the frame cost.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

HOP_CHANNEL = "benchfloor:hop"

_sockets: set[Any] = set()
_subscribed: asyncio.Task[Any] | None = None
_reader: asyncio.Task[None] | None = None


async def _subscribe(url: str) -> Any:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, socket_timeout=None, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe(HOP_CHANNEL)
    return pubsub


async def _forward(pubsub: Any) -> None:
    # Subscribe confirmations are read and skipped here: with redis-py's
    # ignore_subscribe_messages=True this reader never saw a message (redis-py 8.1).
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        event = {"type": "websocket.send", "text": message["data"]}
        for send in tuple(_sockets):
            await send(event)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _reader, _subscribed
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    url = os.environ.get("NAIVE_REDIS_URL")
    if url:
        # Subscribed before any welcome: a client that has its welcome misses nothing (a
        # reader started in the background lost every event of a short latency run).
        if _subscribed is None:
            _subscribed = asyncio.get_running_loop().create_task(_subscribe(url))
        pubsub = await _subscribed
        if _reader is None:
            _reader = asyncio.get_running_loop().create_task(_forward(pubsub))
    _sockets.add(send)
    await send({"type": "websocket.send", "text": '{"type":"welcome"}'})
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        _sockets.discard(send)
