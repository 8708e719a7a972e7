"""State events survive a Redis outage end to end: a real server, a real relay process,
a Redis of the test's own that is stopped and started again on the same port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from taskstream.devredis import redis_server_binary, wait_for_port
from taskstream.hub import keys
from taskstream.hub.redis import sync_client
from taskstream.models import OutboxEvent
from taskstream.notifications.services import notification_create
from taskstream.outbox import outbox_publish
from taskstream.rooms.models import Message
from taskstream.rooms.services import room_create
from taskstream.testing import HubClient, RedisProcess, stop_group

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


class KeptRedis(RedisProcess):
    """A Redis that keeps its data across a stop and a start (append-only file, fsync
    on every write), as a production Redis with persistence does."""

    def start(self) -> KeptRedis:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_for_port(self.port, proc=self.proc)
        return self


@pytest.fixture
def kept_redis() -> Iterator[KeptRedis]:
    redis = KeptRedis().start()
    yield redis
    redis.close()


@pytest.fixture
def start_relay(server_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``python -m taskstream.outbox`` processes, stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []
    log = ROOT / "var" / "test-logs" / f"relay-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)

    def start(**env: str) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "taskstream.outbox"],
                                    env={**os.environ, **server_env, **env}, cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_group(proc)


def post_json(url: str, body: dict[str, Any], cookie: str) -> tuple[int, dict[str, Any]]:
    token = "k" * 32  # what a page's {% csrf_token %} cookie holds
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-CSRFToken": token,
                 "Cookie": f"{cookie}; csrftoken={token}", "Origin": url.split("/api/")[0]})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


async def next_event(client: HubClient, timeout: float = 30.0) -> dict[str, Any]:
    """The next logged event (presence comes and goes as Redis does: it is ephemeral,
    without a cursor); any other frame, a ``gap`` say, fails the test."""
    while True:
        frame = await client.recv(timeout)
        assert frame["type"] == "event", frame
        if "cursor" in frame:
            return frame


async def test_a_message_posted_while_redis_is_down_is_stored_then_delivered_once(
        start_server, start_relay, kept_redis, make_user, session_cookie):
    server = start_server(REDIS_URL=kept_redis.url)
    start_relay(REDIS_URL=kept_redis.url)
    alice = await sync_to_async(make_user)("alice")
    room = await sync_to_async(room_create)(slug="outage", name="Outage", creator=alice)
    cookie = await sync_to_async(session_cookie)(alice)
    url = f"{server.http_url}/api/rooms/{room.slug}/messages/"
    client = await HubClient.connect(server.ws_url, cookie=cookie)
    await client.subscribe(room.topic)

    kept_redis.stop()
    status, sent = await sync_to_async(post_json)(url, {"body": "while down"}, cookie)
    assert status == 201  # stored: the client must not send it again
    assert await Message.objects.filter(room=room, body="while down").aexists()
    kept_redis.start()

    event = await next_event(client)
    assert (event["event"], event["data"]["id"]) == ("message.created", sent["id"])
    # Nothing twice: the next event is the next message.
    status, after = await sync_to_async(post_json)(url, {"body": "after"}, cookie)
    event = await next_event(client)
    assert (event["event"], event["data"]["id"]) == ("message.created", after["id"])
    await client.close()


async def test_notifications_made_and_read_while_redis_is_down_arrive_once_in_order(
        start_server, start_relay, kept_redis, make_user, session_cookie):
    server = start_server(REDIS_URL=kept_redis.url)
    start_relay(REDIS_URL=kept_redis.url)
    alice = await sync_to_async(make_user)("alice")
    cookie = await sync_to_async(session_cookie)(alice)
    client = await HubClient.connect(server.ws_url, cookie=cookie)
    await client.subscribe(f"user:{alice.pk}")

    kept_redis.stop()
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": kept_redis.url}):
        made = await sync_to_async(notification_create)(recipient=alice, kind="hello",
                                                         title="while down")
    status, marked = await sync_to_async(post_json)(
        f"{server.http_url}/api/notifications/read-all/", {}, cookie)
    assert (status, marked["marked"]) == (200, [made.pk])
    kept_redis.start()

    created = await next_event(client)
    assert (created["event"], created["data"]["id"]) == ("notification.created", made.pk)
    read = await next_event(client)
    assert (read["event"], read["data"]["ids"], read["data"]["unread"]) == (
        "notification.read", [made.pk], 0)
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": kept_redis.url}):
        later = await sync_to_async(notification_create)(recipient=alice, kind="hello",
                                                          title="after")
    event = await next_event(client)
    assert (event["event"], event["data"]["id"]) == ("notification.created", later.pk)
    await client.close()


async def test_a_relay_killed_mid_way_and_started_again_delivers_each_event_once(
        start_server, start_relay, kept_redis, make_user, session_cookie):
    redis = kept_redis
    server = start_server(REDIS_URL=redis.url)
    alice = await sync_to_async(make_user)("alice")
    client = await HubClient.connect(server.ws_url,
                                     cookie=await sync_to_async(session_cookie)(alice))
    await client.subscribe(f"user:{alice.pk}")
    total = 400  # four of the relay's batches

    def backlog() -> None:
        with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": redis.url}):
            redis.stop()
            with transaction.atomic():  # the fast path fails: all of it is backlog
                for n in range(total):
                    outbox_publish(topic=f"user:{alice.pk}", event="tick", data={"n": n})
            redis.start()

    await sync_to_async(backlog)()
    relay = start_relay(REDIS_URL=redis.url)
    seen = [(await next_event(client))["data"]["n"]]  # the relay is sending
    relay.send_signal(signal.SIGKILL)  # wherever it is: between a publish and a delete
    relay.wait(10)
    left = await OutboxEvent.objects.acount()
    start_relay(REDIS_URL=redis.url)
    while len(seen) < total:
        seen.append((await next_event(client))["data"]["n"])
    assert seen == list(range(total)), f"killed with {left} rows left"
    # Nothing more: the next event after the backlog is a new one.
    await sync_to_async(_publish_one)(redis.url, alice.pk)
    assert (await next_event(client))["event"] == "after"
    await client.close()


def _publish_one(url: str, user_id: int) -> None:
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": url}), \
            transaction.atomic():
        outbox_publish(topic=f"user:{user_id}", event="after", data={})


async def test_a_message_sent_over_the_hub_is_logged_once_with_the_cursor_it_was_acked_with(
        connect, make_user, session_cookie):
    alice = await sync_to_async(make_user)("alice")
    room = await sync_to_async(room_create)(slug="hubpath", name="Hub path", creator=alice)
    client = await connect(cookie=await sync_to_async(session_cookie)(alice))
    await client.subscribe(room.topic)
    await client.send({"type": "publish", "topic": room.topic, "event": "message",
                       "data": {"body": "over the socket"}, "id": 1})
    event = await next_event(client)
    acked = await client.expect("published")
    assert event["data"]["body"] == "over the socket" and acked["cursor"] == event["cursor"]
    # Stored with its event in the outbox: the outbox's send and the hub's are one entry.
    entries = await sync_to_async(sync_client().xrange)(keys.log_key(room.topic))
    assert len(entries) == 1
    assert not await OutboxEvent.objects.aexists()
