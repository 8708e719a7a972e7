"""The hub under stress: several processes, slow and dead peers, Redis restarts, fuzzing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

import psutil
import pytest
import redis.asyncio as aioredis
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from taskstream.hub import keys, publish
from taskstream.testing import HubClient, RedisProcess

pytestmark = pytest.mark.django_db(transaction=True)


async def apub(topic: str, event: str, data: dict[str, Any]) -> str | None:
    return await sync_to_async(publish)(topic, event, data)


async def staff_cookie(make_user, session_cookie) -> str:
    staff = await sync_to_async(make_user)(is_staff=True)
    return await sync_to_async(session_cookie)(staff)


async def test_events_reach_subscribers_on_every_server_process(start_server, make_user,
                                                                session_cookie):
    cookie = await staff_cookie(make_user, session_cookie)
    one, two = start_server(), start_server()
    pooled = start_server(workers=2)  # uvicorn --workers 2: the kernel spreads the sockets
    clients = [await HubClient.connect(s.ws_url, cookie=cookie) for s in (one, two)]
    clients += [await HubClient.connect(pooled.ws_url, cookie=cookie) for _ in range(6)]
    for client in clients:
        await client.subscribe("ops")
    for n in range(5):
        await apub("ops", "deploy.step", {"n": n})
    for client in clients:
        assert [e["data"]["n"] for e in await client.events(5)] == list(range(5))
        await client.close()


async def test_idle_socket_outlives_the_redis_client_read_timeout(connect, make_user,
                                                                   session_cookie):
    # redis-py 8 reads time out after 5 s by default; the naive pattern loses sockets to it.
    client = await connect(cookie=await staff_cookie(make_user, session_cookie))
    await client.subscribe("ops")
    await asyncio.sleep(6.5)
    await apub("ops", "after.idle", {})
    assert (await client.expect("event"))["event"] == "after.idle"


async def test_slow_consumer_is_closed_4408_without_slowing_others(start_server, make_user,
                                                                   session_cookie):
    server = start_server(TASKSTREAM_JSON=json.dumps({"OUTBOUND_QUEUE_BYTES": 65536}))
    cookie = await staff_cookie(make_user, session_cookie)
    fast = await HubClient.connect(server.ws_url, cookie=cookie)
    await fast.subscribe("ops")
    # A small receive buffer (set before connect, so the kernel cannot grow it) and
    # max_queue=1: the slow client stops taking data almost at once.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    slow = await HubClient.connect(server.ws_url, cookie=cookie, max_queue=1, sock=sock)
    await slow.subscribe("ops")
    blob = os.urandom(8_000).hex()  # incompressible, should a proxy compress
    total = 600  # ~10 MB: far beyond socket buffers plus the 64 KiB outbound queue

    async def drain_fast() -> list[int]:
        return [e["data"]["n"] for e in await fast.events(total, timeout=30)]

    reader = asyncio.create_task(drain_fast())
    for n in range(total):
        await apub("ops", "bulk", {"n": n, "blob": blob})
    assert await reader == list(range(total))
    # Now the slow client reads what it was sent: a prefix of the events, then 4408.
    received = []
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            received.append(await slow.recv(timeout=30))
    assert info.value.rcvd is not None and info.value.rcvd.code == 4408
    numbers = [f["data"]["n"] for f in received if f["type"] == "event"]
    assert numbers == list(range(len(numbers))) and len(numbers) < total
    await fast.close()


async def _until(check: Any, timeout: float = 15.0) -> None:
    """Wait until ``await check()`` is true (polling a condition, not sleeping for it)."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 (Redis has no event to wait on)
            await asyncio.sleep(0.02)


async def _non_reading_client(server: Any, cookie: str) -> HubClient:
    """A client that stops taking data almost at once (small buffer, queue of one frame)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return await HubClient.connect(server.ws_url, cookie=cookie, max_queue=1, sock=sock)


async def test_replay_to_non_reading_sockets_holds_bounded_memory(start_server, make_user,
                                                                  session_cookie):
    # A replay is written in pages that wait for the socket to take the previous one: a
    # socket that never reads holds about one page and the outbound queue, not the log.
    server = start_server()
    assert server.proc is not None
    staff = await sync_to_async(make_user)(is_staff=True)
    cookie = await sync_to_async(session_cookie)(staff)
    topic = f"user:{staff.pk}"
    blob = os.urandom(30_000).hex()  # ~60 KB a event: the log below holds ~18 MB
    total = 300
    for n in range(total):
        cursor = await apub(topic, "bulk", {"n": n, "blob": blob})
    assert cursor is not None
    since = cursor.split("-")[0] + "-0-0"  # before the first event of this epoch
    rss = psutil.Process(server.proc.pid)
    before = rss.memory_info().rss
    sockets = [await _non_reading_client(server, cookie) for _ in range(10)]
    for client in sockets:
        await client.send({"type": "subscribe", "topic": topic, "since": since})
    peak = before
    reader = await HubClient.connect(server.ws_url, cookie=cookie)
    await reader.subscribe(topic, since=since)
    numbers = []
    for _ in range(total):  # a reading client still gets the whole log, in order, once
        numbers.append((await reader.expect("event", timeout=30))["data"]["n"])
        peak = max(peak, rss.memory_info().rss)
    assert numbers == list(range(total))
    await reader.close()
    grown = (peak - before) / 2**20
    # Holding the log per socket would be 10 x 18 MB as raw entries and again as frames.
    assert grown < 120, f"server grew {grown:.0f} MB for 10 sockets"
    for client in sockets:
        client.ws.transport.abort()


def _drop_database_connections_of(pid: int) -> int:
    """Terminate the PostgreSQL backends serving process ``pid`` (as a DB restart would)."""
    from django.db import connection

    ports = [c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
             if c.raddr and c.raddr.port == int(connection.settings_dict.get("PORT") or 5432)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND client_port = ANY(%s)", [ports])
        return int(cursor.fetchone()[0])


@pytest.mark.skipif(not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
                    reason="terminating the server's connection needs PostgreSQL")
async def test_topic_hooks_recover_when_the_database_drops_the_connection(start_server,
                                                                          make_user,
                                                                          session_cookie):
    # A socket has no request cycle: only the hub's database boundary closes a connection
    # that went stale. The room hook's query must not fail on it (it answered `unavailable`
    # to every subscribe of that process until something else closed the connection).
    from taskstream.rooms.models import Room

    server = start_server()
    user = await sync_to_async(make_user)()
    room = await Room.objects.acreate(slug=f"r-{user.pk}", name="r", is_private=True)
    await room.members.aadd(user)
    client = await HubClient.connect(server.ws_url,
                                     cookie=await sync_to_async(session_cookie)(user))
    await client.subscribe(room.topic)  # the server's database thread now holds a connection
    await client.send({"type": "unsubscribe", "topic": room.topic})
    while (await client.recv())["type"] != "unsubscribed":  # presence events come first
        pass
    assert server.proc is not None
    assert await sync_to_async(_drop_database_connections_of)(server.proc.pid) >= 1
    subscribed = await client.subscribe(room.topic)
    assert subscribed["topic"] == room.topic
    await client.close()
async def test_socket_whose_outbound_data_is_stuck_is_dropped(start_server, make_user,
                                                             session_cookie):
    # A peer that never reads: its 4408 close would queue behind the data it does not take,
    # and keep-alive pings too, so the server drops it at the transport level instead.
    server = start_server(TASKSTREAM_JSON=json.dumps({"OUTBOUND_STALL_TIMEOUT": 1,
                                                      "HEARTBEAT": 600}))
    assert server.proc is not None
    staff = await sync_to_async(make_user)(is_staff=True)
    cookie = await sync_to_async(session_cookie)(staff)
    topic = f"user:{staff.pk}"
    stuck = await _non_reading_client(server, cookie)
    await stuck.subscribe(topic)
    port = stuck.ws.transport.get_extra_info("sockname")[1]
    blob = os.urandom(30_000).hex()
    for n in range(120):  # ~7 MB: more than the kernel's buffers (4 MB) and the outbound queue
        await apub(topic, "bulk", {"n": n, "blob": blob})
    server_side = psutil.Process(server.proc.pid)

    async def dropped() -> bool:
        return not any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
                       for c in server_side.net_connections(kind="tcp"))

    await _until(dropped, timeout=20)
    stuck.ws.transport.abort()
    # The server still serves everyone else.
    other = await HubClient.connect(server.ws_url, cookie=cookie)
    await other.send({"type": "ping", "id": 1})
    assert (await other.expect("pong"))["id"] == 1
    await other.close()


async def test_anonymous_sockets_are_capped_per_process_and_per_address(start_server, make_user,
                                                                       session_cookie):
    server = start_server(TASKSTREAM_JSON=json.dumps({
        "MAX_ANONYMOUS_CONNECTIONS": 3, "MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS": 2}))
    origin = server.http_url

    async def anonymous(address: str) -> Any:
        # The test connects from 127.0.0.1, a proxy uvicorn trusts by default
        # (FORWARDED_ALLOW_IPS): X-Forwarded-For names the client address.
        return await websockets.connect(server.ws_url, origin=origin,  # type: ignore[arg-type]
                                        additional_headers={"X-Forwarded-For": address},
                                        ping_interval=None)

    async def refused(address: str) -> None:
        ws = await anonymous(address)
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "rate_limited", error
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4431

    async def welcomed(ws: Any) -> bool:
        return bool(json.loads(await ws.recv())["type"] == "welcome")

    one = [await anonymous("203.0.113.1") for _ in range(2)]
    assert all([await welcomed(ws) for ws in one])
    await refused("203.0.113.1")  # the address's limit
    other = await anonymous("203.0.113.2")
    assert await welcomed(other)
    await refused("203.0.113.3")  # the process's limit
    # Signed-in sockets do not count against it.
    user = await sync_to_async(make_user)()
    signed_in = await HubClient.connect(server.ws_url,
                                        cookie=await sync_to_async(session_cookie)(user))
    assert signed_in.welcome["user"] == user.pk
    # A closed socket gives its slot back (once the server has processed the close).
    await one[0].close()

    async def accepted_again() -> bool:
        ws = await anonymous("203.0.113.1")
        frame = json.loads(await ws.recv())
        await ws.close()
        return bool(frame["type"] == "welcome")

    await _until(accepted_again)
    for ws in (one[1], other, signed_in.ws):
        await ws.close()


async def test_redis_restart_turns_into_a_gap_and_service_resumes(start_server, make_user,
                                                                  session_cookie):
    redis = RedisProcess().start()
    try:
        server = start_server(REDIS_URL=redis.url)
        cookie = await staff_cookie(make_user, session_cookie)
        with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": redis.url}):
            client = await HubClient.connect(server.ws_url, cookie=cookie)
            await client.subscribe("ops")
            await apub("ops", "before", {})
            before = await client.expect("event")
            redis.restart()  # no persistence: the log and its epoch are gone
            # The server reconnects its Pub/Sub by itself and resyncs the subscription.
            gap = await client.expect("gap", timeout=15)
            assert gap["topic"] == "ops" and gap["cursor"].split("-")[0] != (
                before["cursor"].split("-")[0])
            await apub("ops", "after", {})
            assert (await client.expect("event"))["event"] == "after"
            # A new socket with the old cursor is told about the gap as well.
            late = await HubClient.connect(server.ws_url, cookie=cookie)
            await late.subscribe("ops", since=before["cursor"])
            await late.expect("gap")
            await client.close()
            await late.close()
    finally:
        redis.close()


async def test_subscribe_racing_a_pubsub_reconnect_gets_no_spurious_gap(start_server, make_user,
                                                                        session_cookie):
    # The hub's Pub/Sub connection drops (Redis restarted with its data, a network blip)
    # while a socket's subscribe with its last cursor is reading the log. The reconnect
    # resyncs every subscription; one that has not finished its first catch-up has no
    # position yet and must not be resynced from an empty one (that answered `gap` with
    # the very cursor the client sent).
    own = RedisProcess().start()
    try:
        server = start_server(REDIS_URL=own.url)
        cookie = await staff_cookie(make_user, session_cookie)
        with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": own.url}):
            first = await HubClient.connect(server.ws_url, cookie=cookie)
            await first.subscribe("ops")  # the server process now holds the channel
            await apub("ops", "before", {})
            cursor = (await first.expect("event"))["cursor"]
            late = await HubClient.connect(server.ws_url, cookie=cookie)
            control = aioredis.Redis.from_url(own.url)
            channel = keys.channel("ops")

            async def blocked(count: int) -> bool:
                return (await control.info("clients"))["blocked_clients"] >= count

            async def resubscribed() -> bool:
                return (await control.pubsub_numsub(channel))[0][1] == 1

            # Hold log reads (scripts count as writes) but not Pub/Sub.
            await control.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
            try:
                await late.send({"type": "subscribe", "topic": "ops", "since": cursor})
                await _until(lambda: blocked(1))  # its first catch-up waits on the log
                await control.client_kill_filter(_type="pubsub")
                await _until(resubscribed)
                await _until(lambda: blocked(2))  # `first` resyncs after the reconnect
            finally:
                await control.execute_command("CLIENT", "UNPAUSE")
            subscribed = await late.expect("subscribed", timeout=10)
            assert subscribed["cursor"] == cursor
            await apub("ops", "after", {})
            after = await late.recv(timeout=10)
            assert after["type"] == "event" and after["event"] == "after", after
            assert (await first.expect("event"))["event"] == "after"
            await control.aclose()
            await first.close()
            await late.close()
    finally:
        own.close()


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each frame after the handshake answer (server frames are
    unmasked)."""
    rest = data.partition(b"\r\n\r\n")[2]
    out = []
    while len(rest) >= 2:
        opcode, size, start = rest[0] & 0x0F, rest[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(rest[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(rest[2:10], "big"), 10
        out.append((opcode, rest[start:start + size]))
        rest = rest[start + size:]
    return out


async def test_dead_peer_is_closed_after_two_heartbeats(start_server):
    heartbeat = 1.0
    server = start_server(TASKSTREAM_JSON=json.dumps({"HEARTBEAT": heartbeat}))
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setblocking(False)
    handshake = (
        f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, handshake.encode())
    # A peer that never answers pings: the server must hang up on its own.
    data = b""
    accepted = closed = None
    try:
        async with asyncio.timeout(10 * heartbeat):
            while True:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    closed = loop.time()
                    break
                data += chunk
                if accepted is None and b"\r\n\r\n" in data:
                    accepted = loop.time()
    finally:
        sock.close()
    assert b"101 Switching Protocols" in data and accepted is not None and closed is not None
    opcodes = [opcode for opcode, _ in server_frames(data)]
    # It pinged, got no pong, and closed with 1011 (keepalive ping timeout).
    assert 0x9 in opcodes and opcodes[-1] == 0x8, opcodes
    assert int.from_bytes(server_frames(data)[-1][1][:2], "big") == 1011
    # One heartbeat to the ping, one more for its pong: never sooner (a slow but live peer
    # keeps its socket); later only by the machine's load.
    assert 2 * heartbeat * 0.9 <= closed - accepted < 2 * heartbeat + 5


frames = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    st.builds(json.dumps, st.dictionaries(
        st.sampled_from(["type", "topic", "since", "id", "event", "data", "token"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=30),
                  st.sampled_from(["subscribe", "publish", "ping", "auth", "unsubscribe",
                                   "user:1", "ops", "room:x", "zz-1-1"])),
        max_size=6)),
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_fuzzed_frames_get_answers_and_others_keep_being_served(hub_server, batch):
    async def run() -> None:
        client = await HubClient.connect(hub_server.ws_url)
        bystander = await HubClient.connect(hub_server.ws_url)
        try:
            for text in batch:
                await client.send(text)
            await client.send({"type": "ping", "id": "end"})
            while True:  # every frame is answered or the socket closes cleanly
                frame = await client.recv()
                assert frame["type"] in ("error", "pong", "subscribed", "unsubscribed", "welcome")
                if frame.get("id") == "end" and frame["type"] == "pong":
                    break
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code in (1000, 1009, 4429)
        finally:
            await client.close()
        await bystander.send({"type": "ping", "id": 1})
        assert await bystander.expect("pong") == {"type": "pong", "id": 1}
        await bystander.close()

    asyncio.run(run())
