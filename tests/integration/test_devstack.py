"""``make run`` (``python -m example.devstack``) as a user runs it: starts, serves, stops clean."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from taskstream.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90.0


def devstack_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh machine: no backends configured, a var/ of its own."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(TASKSTREAM_VAR_DIR=str(var_dir), PORT=str(free_port()), DEBUG="1",
               PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'src'}", **extra)
    return env


class Devstack:
    """The dev stack in a subprocess, its output read continuously (a full pipe would stall it)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = int(env["PORT"])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "example.devstack"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line.rstrip("\n"))
        self._new.put(None)

    def wait_for_line(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"devstack exited first:\n{self.output}")
            if line == wanted:
                return
        raise AssertionError(f"no {wanted!r} after {timeout} s:\n{self.output}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def get(self, path: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
            return int(resp.status)


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            # An orphan the container's init has not reaped yet is dead all the same.
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                living.append(proc)
    return living


@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[Devstack]:
    stack = Devstack(devstack_env(tmp_path))
    tree: list[psutil.Process] = []
    try:
        yield stack
    finally:
        if stack.proc.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                tree = psutil.Process(stack.proc.pid).children(recursive=True)
            stack.proc.terminate()
            try:
                stack.proc.wait(20)
            except subprocess.TimeoutExpired:
                stack.proc.kill()
                stack.proc.wait(5)
        for proc in alive(tree):
            proc.kill()
        if stack.proc.stdout is not None:
            stack.proc.stdout.close()


def test_devstack_serves_then_ctrl_c_stops_every_process(devstack: Devstack) -> None:
    devstack.wait_for_line(f"taskstream ready on http://127.0.0.1:{devstack.port}", READY_TIMEOUT)
    assert "taskstream: demo user: demo / demo (DEBUG only)" in devstack.lines
    assert devstack.get("/healthz") == 200
    assert devstack.get("/readyz") == 200  # the embedded Redis is both hub and broker

    tree = psutil.Process(devstack.proc.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in alive(tree)]
    for expected in ("redis-server", "taskstream.server", "example worker", "example beat",
                     "taskstream.outbox"):
        assert any(expected in c for c in commands), (expected, commands)

    devstack.proc.send_signal(signal.SIGINT)
    assert devstack.proc.wait(20) == 0, devstack.output
    deadline = time.monotonic() + 20
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(tree) == [], [p.cmdline() for p in alive(tree)]
    assert "taskstream: stopped" in devstack.lines


@pytest.mark.parametrize(("name", "url", "shown"), [
    ("REDIS_URL", "redis://127.0.0.1:{port}/0", "redis://127.0.0.1:{port}/0"),
    ("CELERY_BROKER_URL", "amqp://guest:secret@127.0.0.1:{port}//",
     "amqp://guest:***@127.0.0.1:{port}//"),
    ("DATABASE_URL", "postgres://postgres@127.0.0.1:{port}/test",
     "postgres://postgres@127.0.0.1:{port}/test"),
])
def test_unreachable_backend_fails_fast_with_one_clear_line(
        tmp_path: Path, name: str, url: str, shown: str) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "example.devstack"], cwd=ROOT, capture_output=True, text=True,
        env=devstack_env(tmp_path, **{name: url.format(port=port)}), timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""  # nothing started, not even the embedded Redis
    assert result.stderr.startswith(
        f"taskstream: {name}: cannot connect to {shown.format(port=port)} ("), result.stderr
    assert result.stderr.count("\n") == 1
    assert "secret" not in result.stderr
