"""Helpers for tests of projects that use taskstream (and for taskstream's own suite).

* :class:`HubCommunicator` - a protocol-v1 client of the hub's ASGI app in the test's own
  process and event loop: no server, no daphne, a ``Host``/``Origin`` the hub accepts, and
  ``user=`` to sign in with a real session (:mod:`taskstream.communicator`).
* The pytest plugin (:mod:`taskstream.pytest_plugin`, loaded by its entry point):
  ``taskstream_redis``, ``taskstream_hub``, ``taskstream_eager`` fixtures. docs/testing.md.
* :func:`embedded_redis` / :class:`RedisProcess` - a throwaway redis-server on a free
  port (from :mod:`taskstream.devredis`, which the dev stack uses too).
* :class:`ServerProcess` - a real ASGI server (``python -m taskstream.server``) in a
  subprocess, to test what browsers see.
* :class:`HubClient` - a protocol-v1 WebSocket client with ``expect`` helpers
  (needs the ``websockets`` package).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from taskstream.communicator import (
    HubClosed,
    HubCommunicator,
    HubError,
    close_loop_resources,
    session_cookie,
)
from taskstream.devredis import (
    RedisProcess,
    embedded_redis,
    free_port,
    redis_server_binary,
    wait_for_port,
)

__all__ = [
    "HubClient",
    "HubClosed",
    "HubCommunicator",
    "HubError",
    "RedisProcess",
    "ServerProcess",
    "close_loop_resources",
    "embedded_redis",
    "free_port",
    "redis_server_binary",
    "session_cookie",
    "stop_group",
    "wait_for_port",
]


def stop_group(proc: subprocess.Popen[Any], timeout: float = 15.0,
               sig: int = signal.SIGTERM) -> None:
    """Signal a process started with ``start_new_session=True`` and its children (its
    process group), wait up to ``timeout`` seconds, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class ServerProcess:
    """``python -m taskstream.server <app>`` in a subprocess on a free port."""

    def __init__(self, app: str, *, env: dict[str, str] | None = None,
                 workers: int = 1, cwd: str | Path | None = None, log: Path | None = None) -> None:
        self.app = app
        self.env = {**os.environ, **(env or {})}
        self.workers = workers
        self.cwd = str(cwd) if cwd else None
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = log

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        out: Any = subprocess.DEVNULL
        if self.log is not None:
            out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "taskstream.server", self.app, "--port", str(self.port),
             "--workers", str(self.workers), "--log-level", "warning"],
            env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.log is not None:
            out.close()  # the child holds its own descriptor
        try:
            wait_for_port(self.port, timeout, self.proc)
        except BaseException:
            # A server that did not come up in time must not outlive the failed start (it
            # would hold its port and Redis subscriptions while later tests run).
            self.stop()
            raise
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_group(self.proc, sig=sig)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port (the browser's URL stays valid)."""
        self.stop()
        self.start()


class HubClient:
    """A protocol-v1 client over a real WebSocket, for tests and benches."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def connect(cls, url: str, *, origin: str | None = "auto", cookie: str | None = None,
                      **kwargs: Any) -> HubClient:
        import websockets

        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if origin == "auto":
            origin = url.replace("ws://", "http://").replace("wss://", "https://").split("/ws/")[0]
        ws = await websockets.connect(url, origin=origin,  # type: ignore[arg-type]
                                      additional_headers=headers,
                                      max_size=None, ping_interval=None, **kwargs)
        client = cls(ws)
        try:
            client.welcome = await client.expect("welcome")
        except BaseException:
            await ws.close()
            raise
        return client

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def expect(self, frame_type: str, timeout: float = 5.0) -> dict[str, Any]:
        frame = await self.recv(timeout)
        if frame.get("type") != frame_type:
            raise AssertionError(f"expected a {frame_type!r} frame, got {frame}")
        return frame

    async def subscribe(self, topic: str, since: str | None = None, **extra: Any,
                        ) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic, **extra}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        return await self.expect("subscribed")

    async def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next ``count`` frames, which must all be events."""
        got = []
        for _ in range(count):
            got.append(await self.expect("event", timeout))
        return got

    async def close(self) -> None:
        await self.ws.close()

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
