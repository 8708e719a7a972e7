"""Helpers for the monitor's tests: the monitor and heartbeat-sending workers as processes."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async

from taskstream.testing import stop_group
from tests.conftest import LOG_DIR, ROOT, WorkerProcess


class MonitorProcess:
    """``python -m taskstream.ops.monitor`` with its own settings and a log file to read."""

    def __init__(self, server_env: dict[str, str], **taskstream: Any) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log: Path = LOG_DIR / f"monitor-{secrets.token_hex(3)}.log"
        self.env = {**os.environ, **server_env,
                    "TASKSTREAM_JSON": json.dumps({"OPS_PULSE_INTERVAL": 0.5, **taskstream})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MonitorProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "taskstream.ops.monitor"],
                                         env=self.env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
        self.proc = None

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def heartbeat_worker(server_env: dict[str, str], *, queue: str, name: str | None = None,
                     interval: int = 1) -> WorkerProcess:
    """A worker that sends task events and heartbeats every ``interval`` seconds."""
    name = name or f"hb{secrets.token_hex(3)}"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess({**server_env, "CELERY_TASK_DEFAULT_QUEUE": queue,
                            "CELERY_TASK_EVENTS": "1"}, name=name, concurrency=1,
                           log=LOG_DIR / f"{name}.log")
    worker.argv.remove("--without-heartbeat")  # the heartbeats are what the monitor judges
    worker.argv += ["--heartbeat-interval", str(interval)]
    return worker


async def until(check: Callable[[], Any], *, timeout: float = 60.0,
                what: str = "condition") -> Any:
    """Poll ``check`` (sync: it may read the database, in asgiref's one thread, whose
    connection the suite closes) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        found = await sync_to_async(check)()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def next_frame(client: Any, want: Callable[[dict[str, Any]], bool], *,
                     timeout: float = 60.0, seen: list[dict[str, Any]] | None = None
                     ) -> dict[str, Any]:
    """The next ``ops`` event frame that ``want`` accepts (others are kept in ``seen``)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for an ops frame")
        frame = await client.recv(timeout=left)
        if frame.get("type") != "event":
            continue
        if seen is not None:
            seen.append(frame)
        if want(frame):
            return frame


