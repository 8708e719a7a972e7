"""Two server processes behind a real nginx, configured as docs/operations.md shows.

Sockets opened through nginx spread over both processes (each socket's process is found
by which server's established connections grew), and jobs, rooms (presence, messages) and
notifications reach every socket, whichever process holds it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from asgiref.sync import sync_to_async

from example.proxy import WS_LOCATION, NginxProcess, nginx_binary
from taskstream.devredis import free_port
from taskstream.testing import HubClient, ServerProcess

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (.ci/run does)"),
]

ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    """Two servers and the nginx in front of them."""

    def __init__(self, servers: list[ServerProcess], proxy: NginxProcess) -> None:
        self.servers = servers
        self.proxy = proxy

    def sockets_per_server(self) -> list[int]:
        """Established connections each server process holds on its port (nginx's)."""
        counts = []
        for server in self.servers:
            assert server.proc is not None
            conns = psutil.Process(server.proc.pid).net_connections(kind="tcp")
            counts.append(sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED
                              and c.laddr.port == server.port))
        return counts

    async def open(self, cookie: str) -> tuple[HubClient, int]:
        """A socket through nginx, and the index of the server that holds it."""
        before = self.sockets_per_server()
        client = await HubClient.connect(self.proxy.ws_url, cookie=cookie)
        for _ in range(200):
            after = self.sockets_per_server()
            grown = [i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a > b]
            if len(grown) == 1:
                return client, grown[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no single server took the socket: {before} -> {after}")


@pytest.fixture(scope="module")
def cluster(start_server: Callable[..., ServerProcess], tmp_path_factory: Any,
            ) -> Iterator[Cluster]:
    servers = [start_server(), start_server()]
    proxy = NginxProcess(listen=free_port(), upstreams=[s.port for s in servers],
                         prefix=tmp_path_factory.mktemp("nginx"))
    proxy.start()
    yield Cluster(servers, proxy)
    proxy.stop()


def test_the_generated_config_carries_the_documented_ws_block() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert f"```nginx\n{WS_LOCATION}\n```" in docs


def http(cluster: Cluster, method: str, path: str, cookie: str,
         body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """A request through nginx with the session cookie and a CSRF token, as a browser."""
    csrf = secrets.token_hex(16)
    request = urllib.request.Request(
        cluster.proxy.http_url + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Cookie": f"{cookie}; csrftoken={csrf}", "X-CSRFToken": csrf,
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


async def next_event(client: HubClient, event: str, timeout: float = 30.0,
                     username: str | None = None) -> dict[str, Any]:
    """The next ``event`` (of ``username``, for presence), skipping other frames."""
    for _ in range(200):
        frame = await client.recv(timeout)
        if frame.get("type") == "event" and frame["event"] == event and (
                username is None or frame["data"]["user"]["username"] == username):
            return frame
    raise AssertionError(f"no {event} of {username}")


async def subscribe(client: HubClient, topic: str) -> dict[str, Any]:
    """Subscribe, skipping presence events that may come first (our other sockets')."""
    await client.send({"type": "subscribe", "topic": topic})
    for _ in range(50):
        frame = await client.recv(10)
        if frame["type"] == "subscribed":
            return frame
        assert frame.get("event") == "presence.joined", frame
    raise AssertionError("no subscribed")


@pytest.fixture
def two_users(make_user: Callable[..., Any], session_cookie: Callable[[Any], str]):
    def make() -> tuple[Any, Any, str, str]:
        alice, bob = make_user(), make_user()
        return alice, bob, session_cookie(alice), session_cookie(bob)

    return make


async def open_spread(cluster: Cluster, cookie: str, count: int) -> list[tuple[HubClient, int]]:
    opened = [await cluster.open(cookie) for _ in range(count)]
    return opened


async def close_all(opened: list[tuple[HubClient, int]]) -> None:
    for client, _ in opened:
        await client.close()


async def test_sockets_spread_and_rooms_and_notifications_cross_processes(
        cluster: Cluster, two_users: Any) -> None:
    from taskstream.notifications.services import notification_create
    from taskstream.rooms.services import room_create

    alice, bob, alice_cookie, bob_cookie = await sync_to_async(two_users)()
    room = await sync_to_async(room_create)(slug=f"c-{secrets.token_hex(3)}", name="c",
                                            creator=alice, is_private=True, members=[bob])
    alices = await open_spread(cluster, alice_cookie, 6)
    bobs = await open_spread(cluster, bob_cookie, 2)
    try:
        # least_conn: both processes hold sockets, and alice has some on each.
        assert sorted({where for _, where in alices}) == [0, 1], alices
        assert all(n > 0 for n in cluster.sockets_per_server())
        for client, _ in alices:
            await client.subscribe(f"user:{alice.pk}")
        for client, _ in alices:
            await subscribe(client, room.topic)

        # Presence: bob joining on one process is announced on every alice socket.
        bob_ws, _ = bobs[0]
        subscribed = await subscribe(bob_ws, room.topic)
        assert alice.username in [p["username"] for p in subscribed["presence"]]
        for client, _ in alices:
            await next_event(client, "presence.joined", username=bob.username)

        # A message published on bob's process reaches alice on both.
        await bob_ws.send({"type": "publish", "topic": room.topic, "event": "message",
                           "data": {"body": "across"}})
        for client, _ in alices:
            message = await next_event(client, "message.created")
            assert message["data"]["body"] == "across"

        # A notification written by this process reaches each of alice's sockets once.
        await sync_to_async(notification_create)(recipient=alice, kind="demo", title="hello")
        for client, _ in alices:
            note = await next_event(client, "notification.created")
            assert note["data"]["title"] == "hello"
    finally:
        await close_all(alices + bobs)


@pytest.mark.usefixtures("celery_worker")
async def test_a_job_started_through_nginx_reaches_sockets_on_both_processes(
        cluster: Cluster, two_users: Any) -> None:
    _alice, _bob, alice_cookie, _ = await sync_to_async(two_users)()
    status, job = await sync_to_async(http)(
        cluster, "POST", "/api/jobs/", alice_cookie,
        {"kind": "demo.slow", "params": {"steps": 3, "step_seconds": 0.1}})
    assert status == 202, job
    alices = await open_spread(cluster, alice_cookie, 4)
    try:
        assert sorted({where for _, where in alices}) == [0, 1], alices
        stories = []
        for client, _ in alices:
            await client.subscribe(job["topic"], since=job["cursor"])
        for client, _ in alices:
            story = []
            while not story or story[-1]["event"] not in ("job.succeeded", "job.failed"):
                story.append(await client.expect("event", 30))
            stories.append([(e["cursor"], e["event"]) for e in story])
        # Every socket saw the same events, in the same order, the terminal one once.
        assert all(s == stories[0] for s in stories)
        assert [e for _, e in stories[0]].count("job.succeeded") == 1
        _, snapshot = await sync_to_async(http)(cluster, "GET", f"/api/jobs/{job['id']}/",
                                                alice_cookie)
        assert snapshot["state"] == "succeeded"
    finally:
        await close_all(alices)


# -- graceful drain (SIGTERM) -----------------------------------------------------------------

DRAIN = 2.0


@pytest.fixture
def drain_cluster(start_server: Callable[..., ServerProcess], tmp_path: Path,
                  ) -> Iterator[Cluster]:
    from tests.conftest import SUITE_THROTTLES

    settings_json = json.dumps({**SUITE_THROTTLES, "DRAIN_SECONDS": DRAIN})
    servers = [start_server(TASKSTREAM_JSON=settings_json) for _ in range(2)]
    proxy = NginxProcess(listen=free_port(), upstreams=[s.port for s in servers],
                         prefix=tmp_path / "nginx")
    proxy.start()
    yield Cluster(servers, proxy)
    proxy.stop()


class Follower:
    """A client following docs/protocol.md's resume checklist: on any close, reconnect
    (through nginx) after a jittered pause and resubscribe from the last cursor."""

    def __init__(self, url: str, cookie: str, topic: str) -> None:
        self.url, self.cookie, self.topic = url, cookie, topic
        self.got: list[int] = []
        self.closes: list[int | None] = []
        self.gaps = 0
        self.subscribed = asyncio.Event()

    async def run(self, total: int) -> None:
        from websockets.exceptions import ConnectionClosed

        since: str | None = None
        while len(self.got) < total:
            client = None
            try:
                client = await HubClient.connect(self.url, cookie=self.cookie)
                await client.subscribe(self.topic, since=since)
                self.subscribed.set()
                while len(self.got) < total:
                    frame = await client.recv(timeout=60)
                    if frame["type"] == "event":
                        self.got.append(frame["data"]["n"])
                        since = frame["cursor"]
                    elif frame["type"] == "gap":
                        self.gaps += 1
                        since = frame["cursor"]
            except (ConnectionClosed, OSError):
                self.closes.append(client.ws.close_code if client is not None else None)
                await asyncio.sleep(secrets.randbelow(300) / 1000)  # jitter, as client.js
        if client is not None:
            await client.close()


def _refused(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


async def test_sigterm_drains_one_process_and_its_clients_move_on_missing_nothing(
        drain_cluster: Cluster, two_users: Any) -> None:
    from taskstream.hub import publish

    alice, _bob, cookie, _ = await sync_to_async(two_users)()
    topic, total = f"user:{alice.pk}", 80
    followers = [Follower(drain_cluster.proxy.ws_url, cookie, topic) for _ in range(8)]
    runs = [asyncio.create_task(f.run(total)) for f in followers]
    await asyncio.wait_for(asyncio.gather(*(f.subscribed.wait() for f in followers)), 60)
    held = drain_cluster.sockets_per_server()
    assert all(n > 0 for n in held), held
    doomed = drain_cluster.servers[0]
    assert doomed.proc is not None
    proc = doomed.proc

    for n in range(total):
        await sync_to_async(publish)(topic, "tick", {"n": n})
        if n == 20:
            proc.send_signal(signal.SIGTERM)
            # It stops accepting at once, while its sockets are still being drained.
            await asyncio.sleep(0.3)
            assert await sync_to_async(_refused)(doomed.port)
            assert proc.poll() is None, "it exited before draining its sockets"
        await asyncio.sleep(0.04)

    await asyncio.wait_for(asyncio.gather(*runs), 90)
    # Every client got every event, once, in order; none saw a gap.
    for follower in followers:
        assert follower.got == list(range(total)), follower.got
        assert follower.gaps == 0
    # Exactly the sockets the drained process held were closed, each with 1012.
    closes = [c for f in followers for c in f.closes]
    assert closes == [1012] * held[0], closes
    # uvicorn ends a graceful shutdown by re-raising the signal it caught.
    assert await sync_to_async(proc.wait)(DRAIN + 15) in (0, -signal.SIGTERM)
    assert doomed.log is not None
    assert "timeout graceful shutdown exceeded" not in doomed.log.read_text()
    # nginx still answers, from the other process.
    status, _ = await sync_to_async(http)(drain_cluster, "GET", "/healthz", cookie)
    assert status == 200
