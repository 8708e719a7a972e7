"""Processes and sockets for the hub bench: Redis, the two servers, publishers, clients.

The server under test is pinned to one core (``taskset``); this process, the publisher
and Redis run on the other, so the server's CPU and latency are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import websockets
from websockets.typing import Origin

from taskstream.testing import HubClient, RedisProcess, free_port, stop_group, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
CONNECT_CONCURRENCY = 100


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), {cpu})


@dataclass
class Env:
    """What both servers share: one Redis, and the hub's database with its users."""

    redis: RedisProcess
    tmp: Path
    hub_env: dict[str, str]
    naive_env: dict[str, str]
    users: list[int] = field(default_factory=list)
    cookies: dict[int, str] = field(default_factory=dict)

    @classmethod
    def create(cls, client_cpu: int, n_users: int) -> Env:
        tmp = Path(tempfile.mkdtemp(prefix="taskstream-bench-"))
        redis = RedisProcess().start()
        assert redis.proc is not None
        pin(redis.proc.pid, client_cpu)
        pythonpath = f"{ROOT}{os.pathsep}{ROOT / 'src'}"
        hub_env = {
            **os.environ,
            "PYTHONPATH": pythonpath,
            "DJANGO_SETTINGS_MODULE": "example.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "REDIS_URL": redis.url,
            "CELERY_BROKER_URL": redis.url,
            "TASKSTREAM_KEY_PREFIX": "tsbench:",
            "TASKSTREAM_VAR_DIR": str(tmp),
            # DEBUG off: Django's debug query log would grow the server's memory per socket.
            "DEBUG": "0",
            "SECRET_KEY": "taskstream-bench-" + os.urandom(8).hex(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # The scenarios put every socket on one user's topic (the naive pattern's
            # group `user_1`), so the per-user socket cap must not refuse them.
            "TASKSTREAM_JSON": json.dumps({"MAX_CONNECTIONS_PER_USER": 100_000}),
        }
        naive_env = {
            **os.environ,
            "PYTHONPATH": pythonpath,
            "DJANGO_SETTINGS_MODULE": "bench.naive.settings",
            "NAIVE_REDIS_URL": redis.url,
        }
        env = cls(redis=redis, tmp=tmp, hub_env=hub_env, naive_env=naive_env)
        env._prepare_db(n_users)
        return env

    def _prepare_db(self, n_users: int) -> None:
        """Migrate the hub's SQLite file and log users in (real sessions, real cookies)."""
        code = (
            "import json, django; django.setup()\n"
            "from django.core.management import call_command\n"
            "call_command('migrate', verbosity=0)\n"
            "from django.conf import settings\n"
            "from django.contrib.auth import get_user_model\n"
            "from django.test import Client\n"
            "out = {}\n"
            f"for i in range({n_users}):\n"
            "    user = get_user_model().objects.create_user(username=f'bench{i}', password='x')\n"
            "    client = Client(); client.force_login(user)\n"
            "    name = settings.SESSION_COOKIE_NAME\n"
            "    out[user.pk] = f'{name}={client.cookies[name].value}'\n"
            "print(json.dumps(out))\n"
        )
        result = subprocess.run([sys.executable, "-c", code], env=self.hub_env, cwd=ROOT,
                                check=True, capture_output=True, text=True)
        cookies = json.loads(result.stdout.strip().splitlines()[-1])
        self.cookies = {int(k): v for k, v in cookies.items()}
        self.users = sorted(self.cookies)

    def sessions(self, user: int, count: int) -> list[str]:
        """``count`` signed-in sessions of ``user`` (cookie headers): one per socket, as
        browsers reconnecting after a server process died bring them."""
        code = (
            "import json, django; django.setup()\n"
            "from django.conf import settings\n"
            "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY\n"
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"user = get_user_model().objects.get(pk={user})\n"
            "out = []\n"
            f"for _ in range({count}):\n"
            "    s = SessionStore()\n"
            "    s[SESSION_KEY] = str(user.pk)\n"
            "    s[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]\n"
            "    s[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
            "    s.create()\n"
            "    out.append(f'{settings.SESSION_COOKIE_NAME}={s.session_key}')\n"
            "print(json.dumps(out))\n"
        )
        result = subprocess.run([sys.executable, "-c", code], env=self.hub_env, cwd=ROOT,
                                check=True, capture_output=True, text=True)
        cookies: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
        return cookies

    def close(self) -> None:
        self.redis.close()
        with contextlib.suppress(OSError):
            for path in sorted(self.tmp.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            self.tmp.rmdir()


class Server:
    """One server under test: a single uvicorn process pinned to ``cpu``."""

    def __init__(self, target: str, env: Env, cpu: int, log_dir: Path) -> None:
        self.target = target
        self.port = free_port()
        self.cpu = cpu
        self.log = log_dir / f"server-{target}.log"
        if target == "hub":
            self.argv = [sys.executable, "-m", "taskstream.server", "example.asgi:application",
                         "--port", str(self.port), "--log-level", "warning"]
            self.env = env.hub_env
        else:
            # The same uvicorn build as taskstream.server, with uvicorn's defaults
            # (permessage-deflate on) as a project following the guides has them.
            app = "bench.naive.asgi:application" if target == "naive" else "bench.floor:application"
            self.argv = [sys.executable, "-m", "uvicorn", app,
                         "--port", str(self.port), "--loop", "uvloop", "--http", "httptools",
                         "--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log",
                         "--log-level", "warning"]
            if target == "floor":  # exactly the hub's transport options
                self.argv += ["--ws-per-message-deflate", "false"]
            self.env = env.naive_env
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.errors = 0

    def url(self, user: int) -> str:
        if self.target in ("hub", "floor"):
            return f"ws://127.0.0.1:{self.port}/ws/"
        return f"ws://127.0.0.1:{self.port}/ws/notify/{user}/"

    def start(self) -> Server:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(["taskset", "-c", str(self.cpu), *self.argv],
                                         env=self.env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, 60, self.proc)
        self.ps = psutil.Process(self.proc.pid)
        return self

    def cpu_s(self) -> float:
        assert self.ps is not None
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def log_mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_exceptions(self, since: int) -> int:
        """Application errors the server logged after byte offset ``since``."""
        if not self.log.exists():
            return 0
        with self.log.open("rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        return text.count("Traceback (most recent call last)")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, timeout=20)
        self.proc = None


class Publisher:
    """``python -m bench.publisher`` as a child process driven over its stdin."""

    def __init__(self, target: str, user: int, env: Env) -> None:
        self.target = target
        self.user = user
        self.env = env.hub_env if target == "hub" else env.naive_env
        self.proc: asyncio.subprocess.Process | None = None

    async def spawn(self) -> Publisher:
        """Start the process; it boots while the caller starts the server."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.publisher", self.target, "--user", str(self.user),
            env=self.env, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        return self

    async def ready(self) -> Publisher:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"publisher failed to start: {line!r}")
        return self

    async def run(self, count: int, interval: float = 0.0, start: int = 0) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        command = {"count": count, "interval": interval, "start": start}
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        result: dict[str, Any] = json.loads(line)
        return result

    async def close(self) -> None:
        if self.proc is None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class Tally:
    """Deliveries over all sockets of one scenario."""

    expected: int = 0
    delivered: int = 0
    last_ns: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self) -> None:
        self.delivered += 1
        self.last_ns = time.monotonic_ns()
        if self.expected and self.delivered >= self.expected:
            self.done.set()

    async def wait(self, quiet: float, cap: float) -> bool:
        """Until everything arrived, or nothing arrived for ``quiet`` s; True when complete."""
        deadline = time.monotonic() + cap
        self.last_ns = max(self.last_ns, time.monotonic_ns())
        while not self.done.is_set():
            if (time.monotonic_ns() - self.last_ns) / 1e9 > quiet or time.monotonic() > deadline:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), 0.1)
        return True


class Sock:
    """One client socket of either target, with what it received."""

    def __init__(self, target: str, tally: Tally | None = None) -> None:
        self.target = target
        self.tally = tally
        self.ws: Any = None
        self.ns: list[int] = []
        self.lat_ns: list[int] = []
        self.cursor: str | None = None
        self.closed_at: float | None = None
        self.close_code: int | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self, server: Server, user: int, env: Env, *, since: str | None = None,
                   read: bool = True) -> Sock:
        if self.target == "hub":
            client = await HubClient.connect(server.url(user), cookie=env.cookies[user],
                                             open_timeout=60)
            await client.subscribe(f"user:{user}", since=since)
            self.ws = client.ws
        elif self.target == "floor":
            self.ws = await websockets.connect(server.url(user), max_size=None,
                                               ping_interval=None, open_timeout=60,
                                               origin=Origin(f"http://127.0.0.1:{server.port}"),
                                               additional_headers={"Cookie": env.cookies[user]})
            await self.ws.recv()
        else:
            self.ws = await websockets.connect(server.url(user), max_size=None,
                                               ping_interval=None, open_timeout=60)
        if read:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        hub = self.target == "hub"
        try:
            async for raw in self.ws:
                now = time.monotonic_ns()
                frame = json.loads(raw)
                if hub:
                    if frame.get("type") != "event":
                        continue
                    data = frame["data"]
                else:
                    data = frame
                n = data.get("n", -1)
                if n < 0:
                    continue
                if hub:
                    self.cursor = frame["cursor"]
                self.ns.append(n)
                self.lat_ns.append(now - data["t"])
                if self.tally is not None:
                    self.tally.add()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()
            self.close_code = getattr(self.ws, "close_code", None)

    @property
    def open_now(self) -> bool:
        return self.ws is not None and self.ws.state is websockets.State.OPEN

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


async def open_many(target: str, server: Server, user: int, env: Env, count: int,
                    tally: Tally | None = None, read: bool = True) -> tuple[list[Sock], int]:
    """Open ``count`` sockets (bounded concurrency); returns the open ones and the failures."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Sock | None:
        async with gate:
            try:
                return await Sock(target, tally).open(server, user, env, read=read)
            except Exception:
                return None

    opened = await asyncio.gather(*(one() for _ in range(count)))
    socks = [s for s in opened if s is not None]
    return socks, count - len(socks)


async def close_many(socks: list[Sock]) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 5)

    async def one(sock: Sock) -> None:
        async with gate:
            await sock.close()

    await asyncio.gather(*(one(s) for s in socks))
