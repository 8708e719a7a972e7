"""Test helpers for shared documents: :class:`Editor`, a client as a browser's would be — a
pycrdt Doc synced over a real server's HTTP API and hub socket — for your tests and benches.

    editor = Editor(server, cookie, document_id, name="ann")
    await editor.connect()             # sync over HTTP, subscribe, send what the server lacks
    await editor.type(0, "hello")      # a local edit, published; the answer frame is returned
    await editor.disconnect()          # offline: editor.edit(...) changes only the local copy
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Text, merge_updates

from taskstream.testing import HubClient

CSRF = "c" * 32  # a CSRF cookie and header that match, as a page's token would
EMPTY_UPDATE = b"\x00\x00"  # a Yjs v1 update with nothing in it


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def http(
    base_url: str, cookie: str, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """One JSON request to a real server (blocking; call it through ``asyncio.to_thread``)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={
            "Cookie": f"{cookie}; csrftoken={CSRF}",
            "X-CSRFToken": CSRF,
            "Content-Type": "application/json",
            "Referer": base_url + "/",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, (json.loads(raw) if raw else {})


class Editor:
    """One person's copy of a document: edits locally, publishes each change as an ``update``,
    applies everyone else's, and catches up over HTTP on (re)connect and on ``gap``."""

    def __init__(self, server: Any, cookie: str, doc_id: str, name: str = "") -> None:
        """``server``: anything with ``http_url`` and ``ws_url`` (a ``ServerProcess``)."""
        self.server, self.cookie, self.doc_id = server, cookie, doc_id
        self.topic = f"doc:{doc_id}"
        self.name = name or secrets.token_hex(3)
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("text", type=Text)
        self._captured: list[bytes] | None = None
        self._observer = self.doc.observe(self._on_transaction)
        self.hub: HubClient | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.received: list[dict[str, Any]] = []  # update events from others
        self.errors: list[dict[str, Any]] = []
        self.gaps = 0
        # When each update of another editor arrived, by its base64: for the bench.
        self.arrivals: dict[str, float] = {}

    @property
    def value(self) -> str:
        return str(self.text)

    async def connect(self) -> None:
        self.hub = await HubClient.connect(self.server.ws_url, cookie=self.cookie)
        await self.sync(subscribe=True)

    async def sync(self, *, subscribe: bool) -> None:
        """HTTP sync: take what we lack, subscribe from its cursor, send what the server lacks."""
        status, answer = await asyncio.to_thread(
            http,
            self.server.http_url,
            self.cookie,
            "POST",
            f"/api/collab/docs/{self.doc_id}/sync/",
            {"state_vector": b64(self.doc.get_state())},
        )
        assert status == 200, (status, answer)
        self.doc.apply_update(base64.b64decode(answer["update"]))
        if subscribe:
            assert self.hub is not None
            await self.hub.send(
                {"type": "subscribe", "topic": self.topic, "since": answer["cursor"]}
            )
            while (frame := await self.hub.recv(10)).get("type") != "subscribed":
                self._handle(frame)
            self._reader = asyncio.get_running_loop().create_task(self._read())
        missing = self.doc.get_update(base64.b64decode(answer["state_vector"]))
        if missing != EMPTY_UPDATE:
            reply = await self.publish(missing)
            assert reply["type"] == "published", reply

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None
        if self.hub is not None:
            await self.hub.close()
            self.hub = None

    def edit(self, index: int, insert: str = "", delete: int = 0) -> bytes:
        """A local change; returns its Yjs update (not sent)."""

        def change(text: Text) -> None:
            if delete:
                del text[index : index + delete]
            if insert:
                text.insert(index, insert)

        return self.change(change)

    def change(self, change: Callable[[Text], None]) -> bytes:
        """Run ``change(text)`` as one transaction; returns its Yjs update (not sent).

        The transaction's own update, as Yjs' ``doc.on("update")`` gives a browser: a diff
        against a state vector would carry the document's whole delete set every time.
        """
        captured: list[bytes] = []
        self._captured = captured
        try:
            with self.doc.transaction():
                change(self.text)
        finally:
            self._captured = None
        if not captured:
            return EMPTY_UPDATE
        return captured[0] if len(captured) == 1 else merge_updates(*captured)

    def _on_transaction(self, event: Any) -> None:
        if self._captured is not None:
            self._captured.append(event.update)

    async def publish(self, update: bytes, *, timeout: float = 30.0) -> dict[str, Any]:
        """Publish an update; returns the server's answer (``published`` or ``error``)."""
        return await self.send_publish(
            {"update": b64(update), "client": self.name}, timeout=timeout
        )

    async def send_publish(
        self, data: dict[str, Any], *, event: str = "update", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Publish ``data`` as is; returns the server's answer to it."""
        assert self.hub is not None
        self._next_id += 1
        frame_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[frame_id] = future
        await self.hub.send(
            {"type": "publish", "topic": self.topic, "event": event, "id": frame_id, "data": data}
        )
        if self._reader is None:  # not subscribed: read the answer here
            while not future.done():
                self._handle(await self.hub.recv(timeout))
        return await asyncio.wait_for(future, timeout)

    async def type(self, index: int, insert: str = "", delete: int = 0) -> dict[str, Any]:
        return await self.publish(self.edit(index, insert, delete))

    async def _read(self) -> None:
        assert self.hub is not None
        while True:
            self._handle(await self.hub.recv(timeout=3600))

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in ("published", "error") and frame.get("id") in self._waiting:
            future = self._waiting.pop(frame["id"])
            if not future.done():
                future.set_result(frame)
            return
        if kind == "error":
            self.errors.append(frame)
        elif kind == "gap":
            self.gaps += 1
            asyncio.get_running_loop().create_task(self.sync(subscribe=False))
        elif kind == "event" and frame.get("event") == "update":
            data = frame["data"]
            if data.get("client") == self.name:
                return  # our own, echoed
            self.doc.apply_update(base64.b64decode(data["update"]))
            self.received.append(data)
            self.arrivals[data["update"]] = time.time()


async def wait_until(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true (generous under a loaded machine)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
