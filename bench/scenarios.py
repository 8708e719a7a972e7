"""The scenarios, each run against one target ("hub" or "naive") on a fresh server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import Env, Publisher, Server, Sock, Tally, close_many, open_many
from bench.stats import lost_ranges, percentiles


@dataclass
class Config:
    server_cpu: int
    log_dir: Path
    results_dir: Path
    profile: bool = False


@contextlib.asynccontextmanager
async def running(target: str, env: Env, cfg: Config, user: int,
                  ) -> AsyncIterator[tuple[Server, Publisher]]:
    publisher = Publisher(target, user, env)
    await publisher.spawn()  # for the bare ASGI app: a plain PUBLISH (bench/floor.py)
    server = Server(target, env, cfg.server_cpu, cfg.log_dir)
    mark = server.log_mark()
    try:
        server.start()
        if publisher.proc is not None:
            await publisher.ready()
        yield server, publisher
    finally:
        await publisher.close()
        server.stop()
        server.errors = server.log_exceptions(mark)


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def reconnect(target: str, env: Env, cfg: Config, user: int, *, events: int = 100,
                    rate: float = 20.0, drop_at: float = 2.0, back_at: float = 4.0,
                    ) -> dict[str, Any]:
    """One browser, ``events`` at ``rate``/s; the socket drops at ``drop_at``, returns at
    ``back_at``. The hub client resubscribes with ``since`` = the last cursor it saw."""
    async with running(target, env, cfg, user) as (server, publisher):
        tally = Tally(expected=events)
        first = await Sock(target, tally).open(server, user, env)
        began = time.monotonic()
        sending = asyncio.ensure_future(publisher.run(events, 1.0 / rate))
        await _sleep_until(began + drop_at)
        await first.close()
        await _sleep_until(began + back_at)
        second = await Sock(target, tally).open(
            server, user, env, since=first.cursor if target == "hub" else None)
        sent = await sending
        await tally.wait(quiet=1.5, cap=30)
        await second.close()
    got = first.ns + second.ns
    return {
        "events": events, "rate": rate, "drop_at_s": drop_at, "back_at_s": back_at,
        "received": len(set(got)), "duplicates": len(got) - len(set(got)),
        "in_order": got == sorted(got),
        "lost": lost_ranges(set(got), events), "send_s": sent["send_s"],
        "server_log_tracebacks": server.errors,
    }


async def fanout(target: str, env: Env, cfg: Config, user: int, *, sockets: int, events: int,
                 profile_name: str | None = None) -> dict[str, Any]:
    """``sockets`` subscribers of one user topic; ``events`` published as fast as possible.

    Server CPU is read from /proc (psutil) right before the first publish and right after
    the last delivery (or after 3 s without one), so it is the cost of this traffic only.
    """
    async with running(target, env, cfg, user) as (server, publisher):
        tally = Tally(expected=sockets * events)
        socks, failed = await open_many(target, server, user, env, sockets, tally)
        tally.expected = len(socks) * events
        await asyncio.sleep(0.5)
        profiler = _start_profiler(server, cfg, profile_name)
        cpu0, began = server.cpu_s(), time.monotonic_ns()
        sent = await publisher.run(events)
        complete = await tally.wait(quiet=3.0, cap=300)
        cpu1 = server.cpu_s()
        last_s = (tally.last_ns - began) / 1e9
        profile = _stop_profiler(profiler, cfg, profile_name)
        await close_many(socks)
    in_order = all(s.ns == sorted(s.ns) and len(s.ns) == len(set(s.ns)) for s in socks)
    delivered = tally.delivered
    cpu = cpu1 - cpu0
    result: dict[str, Any] = {
        "sockets": sockets, "open": len(socks), "connect_errors": failed, "events": events,
        "expected": tally.expected, "delivered": delivered,
        "delivered_ratio": round(delivered / tally.expected, 4) if tally.expected else 0.0,
        "complete": complete, "clients_got_all": sum(len(s.ns) == events for s in socks),
        "per_socket_in_order_no_dupes": in_order, "send_s": sent["send_s"],
        "last_delivery_s": round(last_s, 3),
        "delivered_per_s": round(delivered / last_s, 1) if last_s > 0 else None,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_delivery": round(cpu / delivered * 1e6, 2) if delivered else None,
        "server_log_tracebacks": server.errors,
    }
    if profile is not None:
        result["profile"] = profile
    return result


async def latency(target: str, env: Env, cfg: Config, user: int, *, events: int,
                  warmup: int = 20, interval: float = 0.01) -> dict[str, Any]:
    """Publish → client receive, one event at a time (``interval`` apart, well above the hop)."""
    async with running(target, env, cfg, user) as (server, publisher):
        tally = Tally(expected=events + warmup)
        sock = await Sock(target, tally).open(server, user, env)
        tap = await RedisTap.open(env, user) if target == "hub" else None
        sent = await publisher.run(events + warmup, interval)
        await tally.wait(quiet=2.0, cap=60)
        await sock.close()
        if tap is not None:
            await tap.close()
    hops = [ns / 1e6 for n, ns in zip(sock.ns, sock.lat_ns, strict=True) if n >= warmup]
    extra: dict[str, Any] = {}
    if tap is not None:
        # Split the hop: publish call → Pub/Sub message in this process (Redis + publisher),
        # and the rest of the same event's hop (the server's read, fan-out and WebSocket).
        ws_ms = {n: ns / 1e6 for n, ns in zip(sock.ns, sock.lat_ns, strict=True)}
        redis_ms = [ms for n, ms in tap.got.items() if n >= warmup]
        rest = [ws_ms[n] - ms for n, ms in tap.got.items() if n >= warmup and n in ws_ms]
        extra = {"to_redis_subscriber_ms": percentiles(redis_ms),
                 "redis_subscriber_to_client_ms": percentiles(rest),
                 "to_redis_subscriber_samples": [round(ms, 4) for ms in redis_ms]}
    return {"events": events, "warmup": warmup, "interval_s": interval, "received": len(hops),
            "hop_ms": percentiles(hops), **extra,
            # How long the publisher's own call took (Redis round trip included): part of hop.
            "publish_call_ms": percentiles(sent["call_ms"][warmup:]),
            "server_log_tracebacks": server.errors,
            "hop_ms_samples": [round(h, 4) for h in hops]}


async def idle(target: str, env: Env, cfg: Config, user: int, *, sockets: int, hold: float,
               report_every: float = 0.0) -> dict[str, Any]:
    """RSS per idle subscribed socket on a fresh server, then who survives ``hold`` seconds."""
    async with running(target, env, cfg, user) as (server, _publisher):
        warm, _ = await open_many(target, server, user, env, 20)
        await close_many(warm)
        await asyncio.sleep(1.0)
        rss0 = server.rss()
        began = time.monotonic()
        socks, failed = await open_many(target, server, user, env, sockets)
        connect_s = time.monotonic() - began
        await asyncio.sleep(2.0)
        rss1 = server.rss()
        cpu0, held_from = server.cpu_s(), time.monotonic()
        next_report = held_from + report_every
        while time.monotonic() - held_from < hold:
            await asyncio.sleep(min(1.0, hold - (time.monotonic() - held_from)))
            if report_every and time.monotonic() >= next_report:
                next_report += report_every
                alive = sum(s.open_now for s in socks)
                print(f"  [{target}] idle hold {time.monotonic() - held_from:6.0f} s: "
                      f"{alive}/{len(socks)} open, rss {server.rss() / 2**20:.0f} MiB",
                      flush=True)
        held = time.monotonic() - held_from
        cpu = server.cpu_s() - cpu0
        rss2 = server.rss()
        dropped = [s for s in socks if not s.open_now]
        await close_many(socks)
    return {
        "sockets": sockets, "open": len(socks), "connect_errors": failed,
        "connect_s": round(connect_s, 2),
        "rss_before_mib": round(rss0 / 2**20, 1), "rss_with_sockets_mib": round(rss1 / 2**20, 1),
        "rss_after_hold_mib": round(rss2 / 2**20, 1),
        "bytes_per_socket": round((rss1 - rss0) / len(socks)) if socks else None,
        "hold_s": round(held, 1), "dropped": len(dropped),
        "dropped_after_s": sorted(round(s.closed_at - held_from, 1) for s in dropped
                                  if s.closed_at is not None)[:50],
        "close_codes": sorted({str(s.close_code) for s in dropped}),
        "idle_cpu_percent": round(100 * cpu / held, 2) if held else None,
        "server_log_tracebacks": server.errors,
    }


async def connect_storm(target: str, env: Env, cfg: Config, user: int, *, sockets: int,
                        ) -> dict[str, Any]:
    """Open ``sockets`` sockets, each with a session of its own (bounded concurrency, as
    browsers coming back after a server process died), close them, then open them again
    (the same sessions: what the server remembers of them counts)."""
    import websockets
    from websockets.typing import Origin

    from bench.harness import CONNECT_CONCURRENCY

    cookies = env.sessions(user, sockets)
    async with running(target, env, cfg, user) as (server, _publisher):
        origin = Origin(f"http://127.0.0.1:{server.port}")
        rounds: list[dict[str, Any]] = []
        for label in ("first", "again"):
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            welcomed_users: list[Any] = []

            async def one(cookie: str, gate: asyncio.Semaphore = gate,
                          welcomed_users: list[Any] = welcomed_users) -> Any:
                async with gate:
                    try:
                        ws = await websockets.connect(
                            server.url(user), max_size=None, ping_interval=None,
                            open_timeout=60, origin=origin,
                            additional_headers={"Cookie": cookie})
                        welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
                        welcomed_users.append(welcome.get("user"))
                        return ws
                    except Exception:
                        return None

            cpu0, began = server.cpu_s(), time.monotonic()
            opened = await asyncio.gather(*(one(c) for c in cookies))
            wall = time.monotonic() - began
            cpu = server.cpu_s() - cpu0
            socks = [ws for ws in opened if ws is not None]
            signed_in = sum(1 for u in welcomed_users if u == user)
            rounds.append({"round": label, "connect_s": round(wall, 2),
                           "server_cpu_s": round(cpu, 2),
                           "server_cpu_ms_per_socket": round(1000 * cpu / len(socks), 3)
                           if socks else None,
                           "open": len(socks), "signed_in": signed_in,
                           "connect_errors": sockets - len(socks)})
            close_gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 5)

            async def shut(ws: Any, close_gate: asyncio.Semaphore = close_gate) -> None:
                async with close_gate:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(ws.close(), 5)

            await asyncio.gather(*(shut(ws) for ws in socks))
            await asyncio.sleep(1.0)
    first, again = rounds
    return {"sockets": sockets, "sessions": len(cookies), "connect_s": first["connect_s"],
            "reconnect_s": again["connect_s"], "connect_errors": first["connect_errors"]
            + again["connect_errors"], "rounds": rounds,
            "server_log_tracebacks": server.errors}


async def ping_after_idle(env: Env, *, count: int = 300, gap: float = 0.01) -> dict[str, Any]:
    """Redis PING round trips from the client process, each after ``gap`` s of sleep.

    The floor of any sequential hop on this machine: one wake-up of Redis and one of
    this process, the same wake-ups every event of the latency scenario pays (several
    times: publisher → Redis → server → client).
    """
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(env.redis.url)
    try:
        await client.ping()
        hot, idle = [], []
        for _ in range(count):
            t = time.monotonic_ns()
            await client.ping()
            hot.append((time.monotonic_ns() - t) / 1e6)
        for _ in range(count):
            await asyncio.sleep(gap)
            t = time.monotonic_ns()
            await client.ping()
            idle.append((time.monotonic_ns() - t) / 1e6)
    finally:
        await client.aclose()
    return {"back_to_back_ms": percentiles(hot), f"after_{gap * 1000:.0f}ms_idle_ms":
            percentiles(idle)}


class RedisTap:
    """A plain Redis subscriber on the hub's channel, in the client process: when each
    event left Redis, to split the hub's hop into its Redis part and its server part."""

    def __init__(self, client: Any, pubsub: Any) -> None:
        self.client = client
        self.pubsub = pubsub
        self.got: dict[int, float] = {}
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, env: Env, user: int) -> RedisTap:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(env.redis.url)
        pubsub = client.pubsub()
        prefix = env.hub_env["TASKSTREAM_KEY_PREFIX"]
        await pubsub.subscribe(f"{prefix}ch:{{user:{user}}}")
        return cls(client, pubsub)

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            now = time.monotonic_ns()
            frame = json.loads(message["data"].partition(b" ")[2])
            data = frame["data"]
            if data.get("n", -1) >= 0:
                self.got[data["n"]] = (now - data["t"]) / 1e6

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        await self.pubsub.aclose()
        await self.client.aclose()


# -- py-spy ---------------------------------------------------------------------------------


def _start_profiler(server: Server, cfg: Config, name: str | None,
                    ) -> subprocess.Popen[bytes] | None:
    if not cfg.profile or name is None or server.proc is None:
        return None
    out = cfg.results_dir / f"{name}.pyspy.txt"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.proc.pid),
         "--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches before the traffic starts
    return proc


def _stop_profiler(proc: subprocess.Popen[bytes] | None, cfg: Config, name: str | None,
                   ) -> dict[str, Any] | None:
    if proc is None or name is None:
        return None
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return summarize_profile(cfg.results_dir / f"{name}.pyspy.txt")


def summarize_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    if not path.exists():
        return {"error": f"no profile at {path}"}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def ranked(table: dict[str, int]) -> list[list[Any]]:
        rows = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [[name, round(100 * n / total, 1)] for name, n in rows]

    return {"samples": total, "file": path.name, "self_percent": ranked(own),
            "inclusive_percent": ranked(inclusive)}


def _short(frame: str) -> str:
    # "send (uvicorn/protocols/websockets/websockets_sansio_impl.py:335)" → drop line numbers
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name
