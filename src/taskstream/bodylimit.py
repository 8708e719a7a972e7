"""Request body limits enforced while the body streams in, in front of Django.

Django's ASGI handler reads a whole request body (spooling it to temporary files) before
any view, middleware or upload handler runs, so a limit checked there comes too late: a
1 GB chunked POST is read to its end before its 403. :class:`BodyLimitMiddleware` wraps
the ASGI app (``application = BodyLimitMiddleware(django_app)``) and, per request:

* lets requests without a body through untouched (no cost on GETs);
* answers ``401 unauthenticated`` to a write to the taskstream API without a signed-in
  session, before a byte of its body is read;
* answers ``413 too_large`` at once when ``Content-Length`` is over the request's limit,
  and cuts a chunked body off (413, connection closed) as soon as it passes the limit;
* answers ``408 timeout`` when no body bytes arrive for ``BODY_TIMEOUT`` seconds (a
  ``Content-Length`` with no body no longer holds the request open).

The limit is ``MAX_BODY_BYTES``; routes that take uploads register a larger allowance
with :func:`body_allowance_register`; a request without a signed-in session gets at most
``ANONYMOUS_MAX_BODY_BYTES`` (enough for a login form).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.urls import Resolver404, resolve

from taskstream.conf import conf

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# URL namespace of the taskstream API: every write there needs a signed-in session.
API_NAMESPACE = "taskstream-api"

_allowances: dict[str, Callable[[], int]] = {}


def body_allowance_register(view_name: str, limit: Callable[[], int]) -> None:
    """Let requests to the URL named ``view_name`` ("namespace:name") carry ``limit()`` bytes.

    Apps call it in ``AppConfig.ready()``; the callable is read per request, so settings
    overridden in tests apply.
    """
    _allowances[view_name] = limit


def _allowance(view_name: str | None) -> int:
    if view_name is not None:
        registered = _allowances.get(view_name)
        if registered is not None:
            return registered()
    return conf.MAX_BODY_BYTES


def _session_user_id(session_key: str) -> Any:
    engine = import_module(settings.SESSION_ENGINE)
    from django.contrib.auth import SESSION_KEY

    return engine.SessionStore(session_key).get(SESSION_KEY)


async def _signed_in(headers: dict[bytes, bytes]) -> bool:
    """Whether the request's session cookie names a session with a user in it."""
    raw = headers.get(b"cookie")
    if not raw:
        return False
    from django.http import parse_cookie

    key = parse_cookie(raw.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
    if not key or len(key) > 1024:
        return False
    # Outside Django's request cycle nothing closes a stale connection of this thread:
    # channels' wrapper closes it before and after (as the hub's own database calls do).
    user_id = await database_sync_to_async(_session_user_id)(key)
    return user_id is not None


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"code": code, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is never read: the connection cannot be reused.
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """ASGI middleware: body size limits and a body read timeout, enforced while streaming."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        length: int | None = None
        if b"content-length" in headers:
            try:
                length = int(headers[b"content-length"])
            except ValueError:
                await _answer(send, 400, "bad_request", "Content-Length is not a number")
                return
        if not chunked and not length:
            await self.app(scope, receive, send)
            return

        root = scope.get("root_path", "")
        path = scope["path"]
        if root and path.startswith(root):
            path = path[len(root):]
        try:
            match = resolve(path)
            view_name: str | None = match.view_name
            api_write = (API_NAMESPACE in match.namespaces
                         and scope["method"] not in SAFE_METHODS)
        except Resolver404:
            view_name, api_write = None, False
        limit = _allowance(view_name)
        anonymous_limit = conf.ANONYMOUS_MAX_BODY_BYTES
        if (api_write or limit > anonymous_limit) and not await _signed_in(headers):
            if api_write:
                await _answer(send, 401, "unauthenticated", "sign in first")
                return
            limit = anonymous_limit
        if length is not None and length > limit:
            await _answer(send, 413, "too_large",
                          f"the request body is larger than {limit} bytes")
            return
        guarded = _GuardedSend(send)
        await self.app(scope, _LimitedBody(receive, guarded, limit), guarded)


class _GuardedSend:
    """Passes the app's messages on until the guard has answered in its place."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False
        self.answered = False

    async def __call__(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class _LimitedBody:
    """The app's ``receive``: counts body bytes, cuts off at the limit or a stalled body."""

    def __init__(self, receive: Receive, guarded: _GuardedSend, limit: int) -> None:
        self.receive = receive
        self.guarded = guarded
        self.limit = limit
        self.received = 0
        self.done = False

    async def __call__(self) -> Message:
        if self.done:  # the body is complete: later calls wait for the disconnect
            return await self.receive()
        try:
            async with asyncio.timeout(conf.BODY_TIMEOUT):
                message = await self.receive()
        except TimeoutError:
            return await self._refuse(408, "timeout",
                                      f"no request body for {conf.BODY_TIMEOUT:g} s")
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            return await self._refuse(413, "too_large",
                                      f"the request body is larger than {self.limit} bytes")
        if not message.get("more_body", False):
            self.done = True
        return message

    async def _refuse(self, status: int, code: str, detail: str) -> Message:
        self.done = True
        if not self.guarded.started:
            await _answer(self.guarded.send, status, code, detail)
        self.guarded.answered = True
        # The app stops reading (Django: RequestAborted) and sends nothing more.
        return {"type": "http.disconnect"}
