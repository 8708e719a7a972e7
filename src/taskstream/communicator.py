"""An in-process client of the hub's ASGI app, for tests: no server, no daphne, no Host header.

:class:`HubCommunicator` drives the hub's ASGI application the way
``channels.testing.WebsocketCommunicator`` drives a consumer (it builds on asgiref's
``ApplicationCommunicator``, which Channels' own builds on), and speaks protocol v1::

    async with HubCommunicator(user=alice) as hub:      # signed in with a real session
        await hub.subscribe("user:%s" % alice.pk)
        await apublish(f"user:{alice.pk}", "hello", {"n": 1})
        frame = await hub.receive_event()
        assert frame["event"] == "hello"

Exported from :mod:`taskstream.testing`; the pytest plugin's ``taskstream_hub`` fixture opens
them and closes them after the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any

__all__ = ["HubClosed", "HubCommunicator", "HubError", "close_loop_resources", "default_host",
           "session_cookie"]

DEFAULT_TIMEOUT = 10.0


class HubError(AssertionError):
    """The hub answered with an ``error`` frame (``code``, ``message``, the whole ``frame``)."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"hub error {frame.get('code')!r}: {frame.get('message')}")
        self.frame = frame
        self.code: str = str(frame.get("code"))


class HubClosed(AssertionError):
    """The hub refused the handshake or closed the socket; ``code`` is the close code
    (403: the handshake was refused, e.g. a foreign ``Origin`` or a ``Host`` not allowed)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"the hub closed the socket with code {code}"
                         + (f" ({reason})" if reason else ""))
        self.code = code
        self.reason = reason


def default_host() -> str:
    """A ``Host`` that ``ALLOWED_HOSTS`` accepts: ``testserver`` (which Django's test setup
    allows) when allowed, else the first concrete entry of ``ALLOWED_HOSTS``."""
    from django.conf import settings
    from django.http.request import validate_host

    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if validate_host("testserver", allowed):
        return "testserver"
    for entry in allowed:
        name = entry.lstrip(".")
        if name and name != "*":
            return name
    return "testserver"


def session_cookie(user: Any) -> str:
    """A ``Cookie`` header value of a new, real session signed in as ``user`` (as
    ``django.test.Client.force_login`` makes). Sync: touches the database."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def _load(application: Any) -> Any:
    if application is None:
        from taskstream.hub.endpoint import HubEndpoint

        return HubEndpoint()
    if isinstance(application, str):  # "myproject.asgi:application"
        module, _, name = application.partition(":")
        return getattr(import_module(module), name or "application")
    return application


class HubCommunicator:
    """A protocol-v1 client of the hub's ASGI app in this process and this event loop.

    * ``application``: the hub's endpoint (default ``HubEndpoint()``), the project's ASGI
      application, or its import path (``"myproject.asgi:application"``); ``path`` is the
      socket's path (``/ws/``).
    * ``user``: sign in with a real Django session of this user (its cookie, sent from a
      same-origin page), as a browser would; ``token``: sign in with a ``/api/ws-token/``
      token in the first frame instead. Neither: anonymous.
    * ``host`` (default: :func:`default_host`) and ``origin`` (default: the same origin,
      ``http://<host>``; ``None`` sends none, as a non-browser client) pass the hub's
      origin check; ``headers`` adds raw headers; ``scope`` adds to the ASGI scope (e.g.
      ``{"user": user}`` as Channels' ``AuthMiddlewareStack`` would set it).

    Frames the helpers step over while waiting for another one are kept, in order, for the
    next :meth:`receive`. Every wait ends after ``timeout`` seconds with an
    ``AssertionError`` naming what was awaited.
    """

    def __init__(self, application: Any = None, path: str = "/ws/", *, user: Any = None,
                 token: str | None = None, host: str | None = None,
                 origin: str | None = "same", headers: Iterable[tuple[bytes, bytes]] = (),
                 scope: dict[str, Any] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.application = application
        self.path = path
        self.user = user
        self.token = token
        self.host = host
        self.origin = origin
        self.extra_headers = list(headers)
        self.extra_scope = dict(scope or {})
        self.timeout = timeout
        self.welcome: dict[str, Any] = {}
        self.closed_code: int | None = None
        self._comm: Any = None
        self._buffer: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)

    # -- connecting ------------------------------------------------------------------

    async def _scope(self) -> dict[str, Any]:
        from asgiref.sync import sync_to_async

        host = self.host or await sync_to_async(default_host)()
        headers: list[tuple[bytes, bytes]] = [(b"host", host.encode("latin-1"))]
        origin = f"http://{host}" if self.origin == "same" else self.origin
        if origin is not None:
            headers.append((b"origin", origin.encode("latin-1")))
        if self.user is not None:
            cookie = await sync_to_async(session_cookie)(self.user)
            headers.append((b"cookie", cookie.encode("latin-1")))
        headers += self.extra_headers
        return {
            "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "scheme": "ws", "server": (host.split(":")[0], 80), "client": ("127.0.0.1", 50000),
            "path": self.path, "raw_path": self.path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "subprotocols": [], **self.extra_scope,
        }

    async def connect(self) -> dict[str, Any]:
        """Open the socket; returns the ``welcome`` frame (after ``auth`` with a ``token``).
        Raises :class:`HubClosed` when the handshake is refused."""
        from asgiref.testing import ApplicationCommunicator

        if self._comm is not None:
            raise RuntimeError("this communicator is already connected")
        self._comm = ApplicationCommunicator(_load(self.application), await self._scope())
        await self._comm.send_input({"type": "websocket.connect"})
        message = await self._output("the handshake's answer")
        if message["type"] == "websocket.close":
            self.closed_code = int(message.get("code", 1000))
            await self._finish()
            raise HubClosed(self.closed_code, str(message.get("reason") or ""))
        if message["type"] != "websocket.accept":
            raise AssertionError(f"expected websocket.accept, got {message}")
        self.welcome = await self.expect("welcome")
        if self.token is not None:
            self.welcome = await self.auth(self.token)
        return self.welcome

    async def auth(self, token: str) -> dict[str, Any]:
        """Sign in with a token (``{"type": "auth"}``); returns the new ``welcome``."""
        await self.send({"type": "auth", "token": token})
        return await self.expect("welcome")

    async def disconnect(self, code: int = 1000) -> None:
        """Close the socket (as the browser would) and wait for the hub to let go of it."""
        if self._comm is None:
            return
        if self.closed_code is None:
            await self._comm.send_input({"type": "websocket.disconnect", "code": code})
        await self._finish()

    async def _finish(self) -> None:
        comm, self._comm = self._comm, None
        if comm is None:
            return
        try:
            await comm.wait(self.timeout)
        except TimeoutError:
            comm.future.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await comm.future

    async def __aenter__(self) -> HubCommunicator:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    # -- frames ----------------------------------------------------------------------

    async def _output(self, what: str, timeout: float | None = None) -> dict[str, Any]:
        if self._comm is None:
            raise RuntimeError("not connected: await connect() first")
        try:
            message: dict[str, Any] = await self._comm.receive_output(timeout or self.timeout)
        except TimeoutError:
            # asgiref cancels the app on a timeout: this socket is gone.
            self._comm = None
            raise AssertionError(f"no {what} from the hub within "
                                 f"{timeout or self.timeout} s") from None
        return message

    async def send(self, frame: dict[str, Any] | str) -> None:
        """Send one text frame (a dict is sent as JSON)."""
        if self._comm is None:
            raise RuntimeError("not connected: await connect() first")
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self._comm.send_input({"type": "websocket.receive", "text": text})

    async def _next(self, what: str, timeout: float | None) -> dict[str, Any]:
        """The next frame off the socket (not the buffer). A close raises HubClosed."""
        message = await self._output(what, timeout)
        if message["type"] == "websocket.close":
            self.closed_code = int(message.get("code", 1000))
            raise HubClosed(self.closed_code, str(message.get("reason") or ""))
        if message["type"] != "websocket.send" or message.get("text") is None:
            raise AssertionError(f"expected a text frame, got {message}")
        frame: dict[str, Any] = json.loads(message["text"])
        return frame

    async def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame, whatever its type."""
        if self._buffer:
            return self._buffer.popleft()
        return await self._next("frame", timeout)

    async def _wait_for(self, matches: Callable[[dict[str, Any]], bool], what: str,
                        timeout: float | None, *, errors: Callable[[dict[str, Any]], bool],
                        ) -> dict[str, Any]:
        """The first frame (buffered ones first) that ``matches``; frames in between stay
        buffered; an error frame that ``errors`` selects raises :class:`HubError`."""
        for i, frame in enumerate(self._buffer):
            if matches(frame) or errors(frame):
                del self._buffer[i]
                if errors(frame) and not matches(frame):
                    raise HubError(frame)
                return frame
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.timeout)
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no {what} from the hub within {timeout or self.timeout} "
                                     f"s; frames meanwhile: {list(self._buffer)}")
            frame = await self._next(what, left)
            if matches(frame):
                return frame
            if errors(frame):
                raise HubError(frame)
            self._buffer.append(frame)

    async def expect(self, frame_type: str, timeout: float | None = None) -> dict[str, Any]:
        """The next frame, which must be of ``frame_type`` (an ``error`` raises HubError)."""
        frame = await self.receive(timeout)
        if frame.get("type") == frame_type:
            return frame
        if frame.get("type") == "error":
            raise HubError(frame)
        raise AssertionError(f"expected a {frame_type!r} frame, got {frame}")

    async def _request(self, frame: dict[str, Any], answer: str,
                       timeout: float | None) -> dict[str, Any]:
        frame_id = next(self._ids)
        await self.send({**frame, "id": frame_id})
        return await self._wait_for(
            lambda f: f.get("type") == answer and f.get("id") == frame_id,
            f"{answer!r} answer to {frame['type']} {frame.get('topic')!r}", timeout,
            errors=lambda f: f.get("type") == "error" and f.get("id") == frame_id)

    # -- protocol helpers ----------------------------------------------------------------

    async def subscribe(self, topic: str, cursor: str | None = None,
                        timeout: float | None = None) -> dict[str, Any]:
        """Subscribe (replaying what was logged after ``cursor``); returns the
        ``subscribed`` frame. A refusal raises :class:`HubError` (``.code`` is e.g.
        ``forbidden`` or ``unknown_topic``). Replayed events follow; read them with
        :meth:`receive_event`."""
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic}
        if cursor is not None:
            frame["since"] = cursor
        return await self._request(frame, "subscribed", timeout)

    async def unsubscribe(self, topic: str, timeout: float | None = None) -> dict[str, Any]:
        return await self._request({"type": "unsubscribe", "topic": topic}, "unsubscribed",
                                   timeout)

    async def publish(self, topic: str, event: str, data: dict[str, Any] | None = None,
                      timeout: float | None = None) -> str | None:
        """Publish as a client (only where the topic's hook allows it); returns the event's
        cursor (``None`` for an ephemeral one). A refusal raises :class:`HubError`."""
        answer = await self._request({"type": "publish", "topic": topic, "event": event,
                                      "data": data or {}}, "published", timeout)
        cursor: str | None = answer.get("cursor")
        return cursor

    async def ping(self, timeout: float | None = None) -> dict[str, Any]:
        return await self._request({"type": "ping"}, "pong", timeout)

    async def receive_event(self, topic: str | None = None, event: str | None = None,
                            timeout: float | None = None) -> dict[str, Any]:
        """The next ``event`` frame (of ``topic`` and named ``event``, when given). Other
        frames stay buffered for :meth:`receive`; an unasked ``error`` raises HubError."""
        def matches(frame: dict[str, Any]) -> bool:
            return (frame.get("type") == "event"
                    and (topic is None or frame.get("topic") == topic)
                    and (event is None or frame.get("event") == event))

        wanted = " ".join(x for x in ("event", event and repr(event),
                                      topic and f"on {topic!r}") if x)
        return await self._wait_for(matches, wanted, timeout,
                                    errors=lambda f: f.get("type") == "error"
                                    and f.get("id") is None)

    async def receive_events(self, count: int, topic: str | None = None,
                             timeout: float | None = None) -> list[dict[str, Any]]:
        """The next ``count`` event frames (of ``topic``, when given)."""
        return [await self.receive_event(topic, timeout=timeout) for _ in range(count)]

    async def receive_nothing(self, timeout: float = 0.1) -> bool:
        """True when no frame is waiting and none arrives within ``timeout`` seconds (an
        assertion helper, as Channels' ``receive_nothing``: it can only show absence for
        that long)."""
        if self._buffer:
            return False
        if self._comm is None:
            raise RuntimeError("not connected: await connect() first")
        queue = self._comm.output_queue
        if not queue.empty():
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await asyncio.sleep(0.01)
            if not queue.empty():
                return False
        return queue.empty()


async def close_loop_resources() -> None:
    """Close what the hub keeps per event loop (the Pub/Sub reader, the revocation listener,
    the async Redis client) for the running loop. A test's loop ends with the test; call
    this before it does (the plugin's ``taskstream_hub`` fixture does), so no connection is
    left open and no task pending."""
    from taskstream.hub import fanout, redis, revocation

    loop = asyncio.get_running_loop()
    registry = revocation._registries.pop(loop, None)
    if registry is not None:
        for task in list(registry._tasks):
            task.cancel()
    hub_fanout = fanout._fanouts.pop(loop, None)
    if hub_fanout is not None:
        await hub_fanout.aclose()
    entry = redis._async_clients.pop(loop, None)
    if entry is not None:
        with contextlib.suppress(Exception):
            await entry[1].aclose()
