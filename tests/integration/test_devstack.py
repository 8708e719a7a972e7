"""``make run`` (``python -m example.devstack``) as a user runs it: starts, serves, stops clean."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from example.proxy import nginx_binary
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

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.port = int(env["PORT"])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "example.devstack", *args], cwd=ROOT, env=env,
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
def devstack_args() -> list[str]:
    return []


@pytest.fixture
def devstack(tmp_path: Path, devstack_args: list[str]) -> Iterator[Devstack]:
    stack = Devstack(devstack_env(tmp_path), *devstack_args)
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

    # Becoming staff beside the running stack: no REDIS_URL to copy (docs/operations.md).
    made = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "boss",
         "--email", "boss@example.com"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**devstack.env, "DJANGO_SUPERUSER_PASSWORD": "a-long-boss-pass-9"})
    assert made.returncode == 0, made.stderr
    with sqlite3.connect(Path(devstack.env["TASKSTREAM_VAR_DIR"]) / "db.sqlite3") as db:
        assert db.execute("SELECT is_staff, is_superuser FROM auth_user WHERE username = ?",
                          ("boss",)).fetchone() == (1, 1)

    tree = psutil.Process(devstack.proc.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in alive(tree)]
    for expected in ("redis-server", "taskstream.server", "example worker", "example beat",
                     "taskstream.outbox", "taskstream.ops.monitor"):
        assert any(expected in c for c in commands), (expected, commands)

    devstack.proc.send_signal(signal.SIGINT)
    assert devstack.proc.wait(20) == 0, devstack.output
    deadline = time.monotonic() + 20
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(tree) == [], [p.cmdline() for p in alive(tree)]
    assert "taskstream: stopped" in devstack.lines


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)")
@pytest.mark.parametrize("devstack_args", [["--processes", "2"]])
def test_cluster_devstack_runs_two_servers_behind_nginx(devstack: Devstack) -> None:
    devstack.wait_for_line(f"taskstream ready on http://127.0.0.1:{devstack.port}", READY_TIMEOUT)
    assert devstack.get("/healthz") == 200  # through nginx
    tree = psutil.Process(devstack.proc.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in alive(tree)]
    servers = [c for c in commands if "-m taskstream.server" in c and "lifeline" not in c
               and "/bin/sh" not in c]
    assert len(servers) == 2, commands
    assert any(c.startswith("nginx: master process") for c in commands), commands
    conf = (Path(devstack.env["TASKSTREAM_VAR_DIR"]) / "nginx" / "nginx.conf").read_text()
    assert f"listen 127.0.0.1:{devstack.port};" in conf

    devstack.proc.send_signal(signal.SIGINT)
    assert devstack.proc.wait(30) == 0, devstack.output
    deadline = time.monotonic() + 20
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(tree) == [], [p.cmdline() for p in alive(tree)]


def test_processes_must_be_a_sensible_count(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "example.devstack", "--processes", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env=devstack_env(tmp_path))
    assert result.returncode == 2
    assert "--processes must be between 1 and 64" in result.stderr


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


def _time_wait_on(port: int) -> None:
    """Leave a connection in TIME_WAIT on ``port``, as a server that closed first does."""
    import socket

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.recv(1)
        client.close()


def test_port_check_ignores_connections_in_time_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from example.devstack import read_port

    port = free_port()
    _time_wait_on(port)
    monkeypatch.setenv("PORT", str(port))
    assert read_port() == port


def test_a_killed_devstack_leaves_no_orphans(devstack: Devstack) -> None:
    devstack.wait_for_line(f"taskstream ready on http://127.0.0.1:{devstack.port}", READY_TIMEOUT)
    tree = psutil.Process(devstack.proc.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in alive(tree)]
    assert any("taskstream.server" in c for c in commands), commands

    devstack.proc.kill()  # no Ctrl-C, no SIGTERM: nothing gets to clean up
    devstack.proc.wait(10)
    try:
        deadline = time.monotonic() + 30
        while alive(tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive(tree) == [], [p.cmdline() for p in alive(tree)]
    finally:  # whatever the outcome, this test leaves nothing running
        for proc in alive(tree):
            proc.kill()


@pytest.mark.django_db(transaction=True)
def test_a_stop_that_waits_on_running_jobs_says_so(django_user_model: Any) -> None:
    from example.devstack import stop_message
    from taskstream.jobs.models import Job

    assert stop_message() is None
    owner = django_user_model.objects.create_user("stopper")
    Job.objects.create(owner=owner, kind="demo.slow", state="running")
    message = stop_message()
    assert message is not None
    assert message.startswith("taskstream: stopping: 1 job is running; the worker gets 5 s")
