"""``make bench-rooms``: a 200-member chat room with 20 senders, on the taskstream hub and
on the Channels tutorial's ``group_send`` chat, in one run.

Each target gets a fresh single-process uvicorn server pinned to one core; this process
(every client socket), Redis and nothing else on the other. The 20 senders take turns at
a fixed aggregate rate; every message is delivered to all 200 members (senders included),
so 5 messages/s is 1,000 deliveries/s. Latency is send → delivery on the same clock (the
send time travels in the message body). The hub path does what a product needs and the
tutorial does not: session auth, room access check, validation, the per-user rate limit
(raised for the bench), a database INSERT and the durable log, then the fan-out.

    python -m bench.rooms            # full run (a minute or two)
    python -m bench.rooms --quick    # small, a few seconds per step
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import websockets

from bench.harness import CONNECT_CONCURRENCY, ROOT, Env, Server, raise_fd_limit
from bench.stats import percentiles
from taskstream.testing import HubClient

RESULTS = ROOT / "bench" / "results"
ROOM = "bench"
TARGETS = ("naive", "hub")
# The per-user rate limit defaults to 10 messages / 10 s; the bench's senders go faster.
HUB_SETTINGS = {"ROOM_MESSAGE_RATE": 1_000_000, "RATE_PER_SECOND": 1000, "RATE_BURST": 1000}


class Tally:
    """Deliveries of one step across all members; ``done`` is set once all arrived."""

    def __init__(self) -> None:
        self.expected = 0
        self.delivered = 0
        self.done = asyncio.Event()

    def reset(self, expected: int) -> None:
        self.expected, self.delivered = expected, 0
        self.done.clear()

    def add(self) -> None:
        self.delivered += 1
        if self.delivered >= self.expected:
            self.done.set()


class Member:
    """One member's socket: records (message number, latency) of what it receives."""

    def __init__(self, target: str, tally: Tally) -> None:
        self.target = target
        self.tally = tally
        self.ws: Any = None
        self.got: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def open(self, server: Server, user: int, env: Env) -> Member:
        if self.target == "hub":
            client = await HubClient.connect(server.url(user), cookie=env.cookies[user],
                                             open_timeout=60)
            await client.subscribe(f"room:{ROOM}")
            self.ws = client.ws
        else:
            self.ws = await websockets.connect(
                f"ws://127.0.0.1:{server.port}/ws/chat/{ROOM}/", max_size=None,
                ping_interval=None, open_timeout=60)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def send(self, n: int) -> None:
        body = f"{n} {time.monotonic_ns()}"
        if self.target == "hub":
            await self.ws.send(json.dumps({"type": "publish", "topic": f"room:{ROOM}",
                                           "event": "message", "data": {"body": body}}))
        else:
            await self.ws.send(json.dumps({"message": body}))

    async def _read(self) -> None:
        hub = self.target == "hub"
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                now = time.monotonic_ns()
                frame = json.loads(raw)
                if hub:
                    if frame.get("type") == "error":
                        self.errors.append(frame.get("code", "?"))
                    if frame.get("event") != "message.created":
                        continue  # presence, acks
                    body = frame["data"]["body"]
                else:
                    body = frame["message"]
                n, sent = body.split()
                self.got.append((int(n), now - int(sent)))
                self.tally.add()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


class RedisTap:
    """A plain subscriber on the room's hub channel, in this process: when each message
    left Redis. Splits send → delivery into ingest (the server's auth, validation, INSERT
    and publish) and fan-out (Redis → server → every member, including client parsing)."""

    def __init__(self, env: Env) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(env.redis.url)
        self.pubsub = self.client.pubsub()
        self.channel = f"{env.hub_env['TASKSTREAM_KEY_PREFIX']}ch:{{room:{ROOM}}}"
        self.at: dict[int, int] = {}  # message number -> ns it left Redis
        self.sent: dict[int, int] = {}
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> RedisTap:
        await self.pubsub.subscribe(self.channel)
        self.task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            now = time.monotonic_ns()
            frame = json.loads(message["data"].partition(b" ")[2])
            if frame.get("event") == "message.created":
                n, sent = frame["data"]["body"].split()
                self.at[int(n)] = now
                self.sent[int(n)] = int(sent)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.pubsub.aclose()
        await self.client.aclose()


def _create_room(env: Env) -> None:
    code = ("import django; django.setup()\n"
            "from django.contrib.auth import get_user_model\n"
            "from taskstream.rooms.models import Room\n"
            f"Room.objects.get_or_create(slug={ROOM!r}, defaults={{'name': 'Bench', "
            "'created_by': get_user_model().objects.first()})\n")
    subprocess.run([sys.executable, "-c", code], env=env.hub_env, cwd=ROOT, check=True)


def _server(target: str, env: Env, cpu: int) -> Server:
    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = Server(target, env, cpu, log_dir)
    if target == "hub":
        server.env = {**env.hub_env, "TASKSTREAM_JSON": json.dumps(HUB_SETTINGS)}
    else:
        server.argv[server.argv.index("bench.naive.asgi:application")] = (
            "bench.rooms_naive:application")
    server.log = log_dir / f"rooms-server-{target}.log"
    return server


async def run_target(target: str, env: Env, args: argparse.Namespace) -> dict[str, Any]:
    server = _server(target, env, args.server_cpu)
    server.start()
    # channels_redis runs out of pooled connections ("Too many connections") when many
    # sockets join at once: the naive target joins in smaller waves.
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY if target == "hub" else 10)
    tally = Tally()

    async def join(user: int) -> Member | None:
        async with gate:
            try:
                return await Member(target, tally).open(server, user, env)
            except Exception:
                return None

    members: list[Member] = []
    tap = await RedisTap(env).open() if target == "hub" else None
    try:
        joined = await asyncio.gather(*(join(u) for u in env.users[: args.members]))
        members = [m for m in joined if m is not None]
        if len(members) < args.senders:
            raise RuntimeError(f"{target}: only {len(members)} of {args.members} joined")
        await asyncio.sleep(1.0)  # presence announcements settle
        senders = members[: args.senders]
        steps = []
        n = 0
        for rate in args.rates:
            for m in members:
                m.got.clear()
            count = max(1, round(rate * args.seconds))
            tally.reset(count * len(members))
            first = n
            began = time.monotonic()
            for i in range(count):
                await _sleep_until(began + i / rate)
                await senders[i % len(senders)].send(n)
                n += 1
            sent_s = time.monotonic() - began
            expected = count * len(members)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tally.done.wait(), 10)
            lat_ms = [ns / 1e6 for m in members for k, ns in m.got if k >= first]
            delivered = len(lat_ms)
            split: dict[str, Any] = {}
            if tap is not None:
                ingest = [(tap.at[k] - tap.sent[k]) / 1e6 for k in range(first, n) if k in tap.at]
                fanout = [(sent_ns + ns - tap.at[k]) / 1e6 for m in members
                          for k, ns in m.got if k >= first and k in tap.at
                          for sent_ns in (tap.sent[k],)]
                split = {"ingest_ms": percentiles(ingest), "fanout_ms": percentiles(fanout)}
            steps.append({
                "messages_per_s": rate, "messages": count, "members": len(members),
                "offered_deliveries_per_s": round(rate * len(members)),
                "delivered": delivered, "expected": expected,
                "delivered_per_s": round(delivered / max(sent_s, 1e-9)),
                "latency_ms": percentiles(lat_ms),
                **split,
                "errors": sorted({e for m in members for e in m.errors}),
            })
            print(f"  {target} {rate:>5} msg/s → {rate * len(members):>6.0f} deliveries/s: "
                  f"p50 {steps[-1]['latency_ms']['50']} ms, p99 {steps[-1]['latency_ms']['99']}"
                  f" ms, delivered {delivered}/{expected}"
                  + (f" (ingest p50 {split['ingest_ms']['50']} ms, fan-out p50 "
                     f"{split['fanout_ms']['50']} ms)" if split else ""), flush=True)
        return {"steps": steps, "joined": len(members),
                "server_cpu_s": round(server.cpu_s(), 2)}
    finally:
        await asyncio.gather(*(m.close() for m in members))
        if tap is not None:
            await tap.close()
        server.stop()


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    env = Env.create(client_cpu=args.client_cpu, n_users=args.members)
    try:
        _create_room(env)
        out = {}
        for target in args.targets:
            out[target] = await run_target(target, env, args)
        return out
    finally:
        env.close()


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{'msg/s':>6} {'deliv/s':>8}  {'naive p50/p99 ms':>18}  {'hub p50/p99 ms':>16}  "
          f"{'hub delivered':>14}")
    hub = result["targets"].get("hub", {}).get("steps", [])
    naive = result["targets"].get("naive", {}).get("steps") or [
        {"latency_ms": {"50": "-", "99": "-"}}] * len(hub)
    for a, b in zip(naive, hub, strict=True):
        print(f"{b['messages_per_s']:>6} {b['offered_deliveries_per_s']:>8}  "
              f"{a['latency_ms']['50']!s:>8}/{a['latency_ms']['99']!s:<9}  "
              f"{b['latency_ms']['50']!s:>7}/{b['latency_ms']['99']!s:<8}  "
              f"{b['delivered']:>6}/{b['expected']}")
    target = next((s for s in hub if s["offered_deliveries_per_s"] >= 1000), None)
    if target is not None:
        p99 = target["latency_ms"]["99"]
        met = p99 is not None and p99 <= 10 and target["delivered"] == target["expected"]
        print(f"\ntarget p99 ≤ 10 ms at {target['offered_deliveries_per_s']:,} deliveries/s: "
              f"{p99} ms — {'met' if met else 'NOT met'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rooms", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short steps")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--rates", type=float, nargs="+", default=[5, 10, 20, 40],
                        help="aggregate messages/s, one step each")
    parser.add_argument("--seconds", type=float, default=None, help="per step")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else 10.0
    raise_fd_limit()
    began = time.monotonic()
    load_before = os.getloadavg()
    targets = asyncio.run(run_all(args))
    result = {
        # Other work on the machine shows up in every latency: keep the load with the numbers.
        "load_avg_1m": {"before": round(load_before[0], 2),
                        "after": round(os.getloadavg()[0], 2)},
        "cores": os.cpu_count(),
        "bench": "rooms", "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "members": args.members, "senders": args.senders, "seconds_per_step": args.seconds,
        "wall_s": round(time.monotonic() - began, 1), "hub_settings": HUB_SETTINGS,
        "targets": targets,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"rooms-{stamp}.json", "rooms-latest.json"):
        (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote bench/results/rooms-latest.json ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
