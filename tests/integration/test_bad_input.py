"""Inputs that used to answer 500 (or ``unavailable`` on the hub), against a real server:
each is a clear 4xx with a ``code`` (or ``bad_frame``)."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from taskstream.testing import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

CSRF = "a" * 32


def call(server: ServerProcess, method: str, path: str, cookie: str | None = None, *,
         body: bytes | None = None, content_type: str = "application/json",
         ) -> tuple[int, dict[str, Any]]:
    headers = {"Origin": server.http_url, "Referer": server.http_url + "/"}
    if cookie:
        headers.update({"Cookie": f"{cookie}; csrftoken={CSRF}", "X-CSRFToken": CSRF})
    if body is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(server.http_url + path, data=body, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        with exc:
            raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"raw": raw[:300].decode(errors="replace")}


def multipart(fields: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(8)
    parts = []
    for name, filename, content in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                     + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def cookie(make_user: Callable[..., Any], session_cookie: Callable[[Any], str]) -> str:
    return session_cookie(make_user())


def _room(creator: Any) -> str:
    from taskstream.rooms.services import room_create

    slug = f"r{secrets.token_hex(4)}"
    room_create(slug=slug, name=slug, creator=creator)
    return slug


def test_lone_surrogate_in_a_chat_message_is_422(
        hub_server: ServerProcess, make_user: Callable[..., Any],
        session_cookie: Callable[[Any], str]) -> None:
    user = make_user()
    slug = _room(user)
    status, body = call(hub_server, "POST", f"/api/rooms/{slug}/messages/", session_cookie(user),
                        body=b'{"body": "a\\ud800b"}')
    assert status == 422 and body["code"] == "invalid", body


async def test_lone_surrogate_over_the_hub_is_bad_frame(
        connect: Callable[..., Any], make_user: Callable[..., Any],
        session_cookie: Callable[[Any], str]) -> None:
    from asgiref.sync import sync_to_async

    user = await sync_to_async(make_user)()
    slug = await sync_to_async(_room)(user)
    client = await connect(cookie=await sync_to_async(session_cookie)(user))
    await client.subscribe(f"room:{slug}")
    # json.dumps escapes the surrogate as \\ud800: valid UTF-8 on the wire, as a browser sends.
    await client.send(json.dumps({"type": "publish", "topic": f"room:{slug}",
                                  "event": "message", "data": {"body": "a\ud800b"}, "id": 7}))
    error = await client.recv()
    while error["type"] == "event":  # presence.joined of this very socket
        error = await client.recv()
    assert error["type"] == "error", error
    assert error["code"] == "bad_frame" and error["id"] == 7, error
    await client.send({"type": "ping", "id": 8})  # the socket stays open and answers
    assert (await client.expect("pong"))["id"] == 8


def test_notification_id_beyond_the_database_is_a_4xx(hub_server: ServerProcess,
                                                       cookie: str) -> None:
    status, body = call(hub_server, "POST", "/api/notifications/read/", cookie,
                        body=json.dumps({"ids": [10**20]}).encode())
    assert status == 422 and body["code"] == "invalid", body
    status, body = call(hub_server, "POST", f"/api/notifications/{10**20}/read/", cookie)
    assert status == 404 and body["code"] == "not_found", body


def test_five_megabyte_json_to_the_jobs_api_is_413_even_without_the_asgi_guard(
        make_user: Callable[..., Any]) -> None:
    # Through the server, BodyLimitMiddleware answers first (test_body_limits.py); behind
    # another server or WSGI, Django's own limit must be a 413 as well, not a 500.
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(make_user())
    big = json.dumps({"kind": "demo.slow", "params": {"x": "y" * 5_000_000}})
    response = client.post("/api/jobs/", big, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_odd_upload_file_name_is_400(hub_server: ServerProcess, cookie: str) -> None:
    data, ctype = multipart([("file", "a" * 5000 + ".csv", b"a,b\n1,2\n")])
    status, body = call(hub_server, "POST", "/api/pipelines/", cookie, body=data,
                        content_type=ctype)
    assert status == 400 and body["code"] == "bad_request", body


def test_ten_megabyte_form_field_is_413(hub_server: ServerProcess, cookie: str) -> None:
    data, ctype = multipart([("kind", None, b"k" * 10_000_000),
                             ("file", "data.csv", b"a,b\n1,2\n")])
    status, body = call(hub_server, "POST", "/api/pipelines/", cookie, body=data,
                        content_type=ctype)
    assert status == 413 and body["code"] == "too_large", body


@pytest.mark.parametrize("path", [
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fexample/settings.py",
    "/static/example/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
])
def test_dot_dot_under_static_is_404(hub_server: ServerProcess, path: str) -> None:
    status, _ = call(hub_server, "GET", path)
    assert status == 404
