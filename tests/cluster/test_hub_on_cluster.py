"""The hub server on a Redis Cluster: live events, resume, and a primary's failover.

Sockets subscribe on a real server (``REDIS_URL = redis+cluster://``) to topics chosen
so that every primary owns one. Fan-out is sharded Pub/Sub: one line per primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from redis.exceptions import RedisError

from taskstream.hub import keys, log, publish
from taskstream.hub.batch import publish_calls
from taskstream.hub.publish import encode_event
from taskstream.testing import HubClient, ServerProcess
from tests.cluster.conftest import ClusterProcesses

pytestmark = pytest.mark.django_db(transaction=True)


async def topics_on_every_primary(cluster: ClusterProcesses, make_user: Callable[..., Any],
                                  session_cookie: Callable[[Any], str],
                                  ) -> list[tuple[str, str]]:
    """``(user topic, its session cookie)``, one per primary of the cluster."""
    found: dict[int, tuple[str, str]] = {}
    for _ in range(200):
        user = await sync_to_async(make_user)()
        topic = f"user:{user.pk}"
        owner = cluster.primary_of(keys.log_key(topic))
        if owner not in found:
            found[owner] = (topic, await sync_to_async(session_cookie)(user))
        if len(found) == 3:
            return list(found.values())
    raise AssertionError("200 users and still a primary without a topic")


def publish_until_done(topic: str, n: int, deadline_s: float = 60) -> str:
    """Publish event ``n`` once, retrying while the cluster fails over: keyed, so a retry of
    a publish whose answer was lost is answered with its first cursor, not logged twice."""
    deadline = time.monotonic() + deadline_s
    topic_json, event_json, data_json, ts = encode_event(topic, "tick", {"n": n})
    while True:
        try:
            return publish_calls([log.publish_args(topic_json, event_json, data_json, ts, topic,
                                                   key=f"n{n}")])[0]
        except RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Reader:
    """One browser tab: resubscribes with its last cursor whenever its socket ends."""

    def __init__(self, server: ServerProcess, topic: str, cookie: str) -> None:
        self.server, self.topic, self.cookie = server, topic, cookie
        self.ns: list[int] = []
        self.gaps = 0
        self.reconnects = 0
        self.cursor: str | None = None
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Reader:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.wait_for(self.subscribed.wait(), 30)
        return self

    async def _run(self) -> None:
        while True:
            client = None
            try:
                client = await HubClient.connect(self.server.ws_url, cookie=self.cookie)
                frame = await client.subscribe(self.topic, since=self.cursor)
                self.cursor = self.cursor or frame["cursor"]
                self.subscribed.set()
                while True:
                    frame = await client.recv(timeout=300)
                    if frame["type"] == "event":
                        self.ns.append(frame["data"]["n"])
                        self.cursor = frame["cursor"]
                    elif frame["type"] == "gap":
                        self.gaps += 1
                        self.cursor = frame["cursor"]
            except asyncio.CancelledError:
                raise
            except Exception:  # closed (1013 while Redis is away), refused: come back
                self.reconnects += 1
                await asyncio.sleep(0.2)
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.close()

    async def wait_for(self, n: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while n not in self.ns:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.topic}: silence; got {self.ns[-5:]}, "
                                     f"{self.gaps} gaps, {self.reconnects} reconnects")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_live_events_and_resume_are_exact_on_every_shard(
        redis_cluster: ClusterProcesses, start_server: Callable[..., ServerProcess],
        make_user: Callable[..., Any], session_cookie: Callable[[Any], str]) -> None:
    server = start_server(REDIS_URL=redis_cluster.url)
    for topic, cookie in await topics_on_every_primary(redis_cluster, make_user,
                                                       session_cookie):
        client = await HubClient.connect(server.ws_url, cookie=cookie)
        await client.subscribe(topic)
        cursors = [await sync_to_async(publish)(topic, "tick", {"n": n}) for n in range(3)]
        live = await client.events(3)
        assert [e["cursor"] for e in live] == cursors
        await sync_to_async(publish)(topic, "typing", {"n": -1}, ephemeral=True)
        assert "cursor" not in await client.expect("event")
        await client.close()
        later = [await sync_to_async(publish)(topic, "tick", {"n": n}) for n in (3, 4)]
        again = await HubClient.connect(server.ws_url, cookie=cookie)
        await again.subscribe(topic, since=cursors[0])
        assert [e["cursor"] for e in await again.events(4)] == cursors[1:] + later
        await again.close()


async def failover(redis_cluster: ClusterProcesses, start_server: Callable[..., ServerProcess],
                   make_user: Callable[..., Any], session_cookie: Callable[[Any], str],
                   fail: Callable[[int], None]) -> tuple[list[Reader], int]:
    """Readers on every shard, events before and after ``fail(primary of the first topic)``.

    Returns the readers (stopped) and how many events each topic got."""
    server = start_server(REDIS_URL=redis_cluster.url)
    pairs = await topics_on_every_primary(redis_cluster, make_user, session_cookie)
    readers = [await Reader(server, topic, cookie).start() for topic, cookie in pairs]
    victim_key = keys.log_key(pairs[0][0])
    victim = redis_cluster.primary_of(victim_key)
    total, at = 40, 15
    for n in range(total):
        if n == at:
            fail(victim)
        for topic, _cookie in pairs:
            await asyncio.to_thread(publish_until_done, topic, n)
    await asyncio.to_thread(redis_cluster.replica_took_over, victim, victim_key)
    try:
        for reader in readers:
            await reader.wait_for(total - 1)
    finally:
        for reader in readers:
            await reader.stop()
    return readers, total


def assert_every_event_or_a_gap(readers: list[Reader], total: int) -> None:
    _victim, *others = readers
    for reader in readers:
        assert len(reader.ns) == len(set(reader.ns)), f"{reader.topic}: duplicates {reader.ns}"
        assert reader.ns == sorted(reader.ns), f"{reader.topic}: out of order {reader.ns}"
        if not reader.gaps:
            assert reader.ns == list(range(total)), f"{reader.topic}: a silent hole {reader.ns}"
    for reader in others:  # shards that did not fail lose nothing
        assert reader.ns == list(range(total)) and reader.gaps == 0


@pytest.mark.timeout(300)  # a failover under a loaded machine: seconds to tens of seconds
async def test_a_manual_failover_gives_every_client_every_event_or_a_gap(
        redis_cluster: ClusterProcesses, start_server: Callable[..., ServerProcess],
        make_user: Callable[..., Any], session_cookie: Callable[[Any], str]) -> None:
    def promote_a_replica(primary: int) -> None:
        replica = redis_cluster.replica_of(primary)
        with redis_cluster.node(replica) as node:
            node.execute_command("CLUSTER", "FAILOVER")

    readers, total = await failover(redis_cluster, start_server, make_user, session_cookie,
                                    promote_a_replica)
    assert_every_event_or_a_gap(readers, total)


@pytest.mark.timeout(300)
async def test_a_killed_primary_gives_every_client_every_event_or_a_gap(
        redis_cluster: ClusterProcesses, start_server: Callable[..., ServerProcess],
        make_user: Callable[..., Any], session_cookie: Callable[[Any], str]) -> None:
    killed: list[int] = []

    def kill(primary: int) -> None:
        killed.append(primary)
        redis_cluster.kill(primary)

    try:
        readers, total = await failover(redis_cluster, start_server, make_user, session_cookie,
                                        kill)
        assert_every_event_or_a_gap(readers, total)
    finally:
        for port in killed:  # it comes back as a replica of the node that took over
            redis_cluster.start_node(port)
        await asyncio.to_thread(redis_cluster.wait_healthy)
