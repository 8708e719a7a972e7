"""No input gets a 5xx from the HTTP API or ``unavailable`` from the hub (hypothesis).

The HTTP routes come from the API's own OpenAPI schema (jobs, notifications, rooms,
ws-token, pipelines' JSON routes), so a new route is fuzzed without editing this file.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from taskstream.testing import ServerProcess

# A room the fuzzing user is a member of, so writes get past the 404.
ROOM = "fuzzroom"
BIG_INTS = st.sampled_from([0, -1, 2**31, 2**63, 10**20, -(10**20)])
SCALARS = (st.none() | st.booleans() | st.integers() | BIG_INTS
           | st.floats(allow_nan=False) | st.text(max_size=40)
           | st.sampled_from(["\ud800", "a\udfffb", "\x00", "../..", "%2e%2e", "🙂" * 10]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
# URLs are bytes on the wire: no surrogates there (they are tried in bodies, above).
URL_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
SEGMENT = (URL_TEXT.filter(lambda s: s and not set(s) & set("/?#%"))
           | BIG_INTS.map(str) | st.uuids().map(str)
           | st.sampled_from([ROOM, ROOM, "%2e%2e", "%ED%A0%80", "0", "-1"]))


@functools.cache
def _routes() -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path, path parameters, JSON body fields) of every API route."""
    from taskstream.api import api

    schema = api.get_openapi_schema()
    components = schema["components"]["schemas"]
    routes = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method == "post" and path.rstrip("/").endswith("/pipelines"):
                continue  # multipart upload: tests/integration/test_bad_input.py
            ref = (operation.get("requestBody", {}).get("content", {})
                   .get("application/json", {}).get("schema", {}).get("$ref", ""))
            fields = list(components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            routes.append((method, path, re.findall(r"{(\w+)}", path), fields))
    return routes


def _body(fields: list[str]) -> st.SearchStrategy[Any]:
    """The route's own fields with any values (often), or any JSON at all."""
    values = SCALARS | st.lists(SCALARS, max_size=3) | JSON
    names = st.sampled_from(fields) if fields else st.text(max_size=8)
    return st.dictionaries(names, values, max_size=4) | JSON


@pytest.mark.django_db(transaction=True)
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_http_api_input_is_a_5xx(data: st.DataObject, api_client: Client) -> None:
    client = api_client
    method, path, params, fields = data.draw(st.sampled_from(_routes()), label="route")
    for name in params:
        path = path.replace("{" + name + "}", data.draw(SEGMENT, label=name), 1)
    query = data.draw(st.dictionaries(st.sampled_from(["before", "limit", "unread", "x"]),
                                      URL_TEXT | BIG_INTS.map(str), max_size=3), label="query")
    kwargs: dict[str, Any] = {"QUERY_STRING": urlencode(query)}
    if method in ("post", "patch", "put"):
        body = data.draw(_body(fields), label="body")
        raw = json.dumps(body)
        if data.draw(st.booleans(), label="mangle"):
            raw = raw[: data.draw(st.integers(0, len(raw)), label="cut")]  # broken JSON
        kwargs.update(data=raw, content_type="application/json")
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code < 500, (method, path, kwargs, response.content[:500])
    if response.status_code >= 400:
        assert "code" in response.json(), response.content[:300]


@pytest.fixture
def api_client(make_user: Callable[..., Any]) -> Client:
    """One signed-in client for every example (a password hash per example is slow)."""
    from taskstream.rooms.services import room_create

    user = make_user()
    room_create(slug=ROOM, name=ROOM, creator=user)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


CLIENT_TYPES = ["subscribe", "unsubscribe", "publish", "ping", "auth", "x"]
TOPICS = st.sampled_from(["user:1", "ops", "job:x", f"room:{ROOM}", "room:", "doc:1",
                          "room:" + "a" * 300]) | st.text(max_size=30)
FRAMES = st.fixed_dictionaries(
    {"type": st.sampled_from(CLIENT_TYPES)},
    optional={"topic": TOPICS | JSON, "since": st.text(max_size=40) | JSON
              | st.sampled_from(["0-0", "x-1-1", "abc-99999999999999999999-0",
                                 "abc-18446744073709551615-18446744073709551615"]),
              "id": JSON, "event": st.sampled_from(["message", "typing", "x.y"]) | JSON,
              "data": st.fixed_dictionaries({}, optional={"body": JSON}) | JSON,
              "token": JSON},
)


# Chat messages and typing in a room the user belongs to, with any body.
ROOM_FRAMES = st.fixed_dictionaries({
    "type": st.just("publish"), "topic": st.just(f"room:{ROOM}"),
    "event": st.sampled_from(["message", "typing"]), "data": st.fixed_dictionaries(
        {}, optional={"body": SCALARS | JSON})})


@pytest.mark.django_db(transaction=True)
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@example(frames=[json.dumps({"type": "publish", "topic": f"room:{ROOM}", "event": "message",
                             "data": {"body": "a\ud800b"}})])
@given(frames=st.lists((FRAMES | ROOM_FRAMES).map(json.dumps) | st.text(max_size=80),
                       min_size=1, max_size=5))
def test_no_hub_frame_is_answered_unavailable(
        frames: list[str], fuzz_hub: tuple[ServerProcess, str]) -> None:
    from websockets.sync.client import connect

    server, cookie = fuzz_hub
    with connect(server.ws_url, origin=server.http_url,  # type: ignore[arg-type]
                 additional_headers={"Cookie": cookie}, open_timeout=10) as ws:
        assert json.loads(ws.recv(10))["type"] == "welcome"
        for frame in frames:
            ws.send(frame)
        token = secrets.token_hex(4)
        ws.send(json.dumps({"type": "ping", "id": token}))
        while True:  # everything up to our pong: the answers to the frames above
            answer = json.loads(ws.recv(10))
            assert not (answer["type"] == "error" and answer["code"] == "unavailable"), (
                frames, answer)
            if answer == {"type": "pong", "id": token}:
                break


@pytest.fixture(scope="module")
def fuzz_hub(start_server: Callable[..., ServerProcess], django_db_blocker: Any,
             ) -> tuple[ServerProcess, str]:
    """A server whose rate limits do not get in the fuzzer's way, and a member of ROOM."""
    from django.contrib.auth import get_user_model

    from taskstream.rooms.services import room_create

    server = start_server(TASKSTREAM_JSON=json.dumps(
        {"RATE_PER_SECOND": 100000, "RATE_BURST": 100000, "ROOM_MESSAGE_RATE": 100000}))
    with django_db_blocker.unblock():
        user = get_user_model().objects.create_user(f"fuzz-{secrets.token_hex(3)}")
        room_create(slug=ROOM, name=ROOM, creator=user)
        client = Client()
        client.force_login(user)
    from django.conf import settings as dj

    return server, f"{dj.SESSION_COOKIE_NAME}={client.cookies[dj.SESSION_COOKIE_NAME].value}"
