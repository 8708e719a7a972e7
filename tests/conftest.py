"""Shared fixtures: a real Redis, a real ASGI server, users with real sessions.

The embedded default (no REDIS_URL) starts a throwaway redis-server for the session;
with REDIS_URL set (``make test-services``) the suite uses that Redis under a key
prefix of its own. Servers run as subprocesses against the test database, so tests
that talk to them use ``transactional_db`` (committed rows are visible to them).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from taskstream.testing import HubClient, RedisProcess, ServerProcess, stop_group

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"


# The whole suite signs up and signs in from 127.0.0.1 under one key prefix; the throttles'
# own tests (tests/integration/test_throttle.py) run a server with small limits.
SUITE_THROTTLES = {"SIGNUPS_PER_CLIENT": 10_000, "LOGIN_ATTEMPTS_PER_CLIENT": 10_000}


def pytest_configure(config: pytest.Config) -> None:
    # The suite uses the plugin users get (taskstream.pytest_plugin), which pytest loads by
    # its entry point once the package is installed; a checkout that is only on PYTHONPATH
    # (or installed before the entry point existed) gets it here.
    manager = config.pluginmanager
    if not manager.has_plugin("taskstream") and not manager.is_blocked("taskstream"):
        from taskstream import pytest_plugin

        manager.register(pytest_plugin, "taskstream")


@pytest.fixture(scope="session")
def taskstream_redis_url() -> Iterator[str]:
    """The plugin's Redis, overridden: ``REDIS_URL`` when set (``make test-services``),
    else a throwaway redis-server for the session."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    own = RedisProcess().start()
    yield own.url
    own.close()


@pytest.fixture(scope="session", autouse=True)
def redis_url(taskstream_redis: str) -> str:
    """Redis for the whole session, and a key prefix no other run shares (the plugin's
    ``taskstream_redis``), with the suite's throttles."""
    settings.TASKSTREAM = {**settings.TASKSTREAM, **SUITE_THROTTLES}
    if not os.environ.get("CELERY_BROKER_URL"):
        settings.CELERY_BROKER_URL = taskstream_redis
    return taskstream_redis


# Tasks of this run go to a queue of its own: a broker shared with other runs (RabbitMQ
# in `make test-services`) never hands our tasks to their workers, or theirs to ours.
CELERY_QUEUE = f"tstest{secrets.token_hex(4)}"


@pytest.fixture(scope="session", autouse=True)
def celery_queue(redis_url: str) -> str:
    from example.celery import app

    settings.CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE
    app.conf.task_default_queue = CELERY_QUEUE
    app.conf.broker_url = settings.CELERY_BROKER_URL
    return CELERY_QUEUE


def _db_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def server_env(django_db_setup: Any, django_db_blocker: Any, redis_url: str) -> dict[str, str]:
    """Environment for subprocesses (servers, workers) sharing this run's DB and Redis."""
    with django_db_blocker.unblock():
        db_url = _db_url()
    return {
        "DJANGO_SETTINGS_MODULE": "example.settings",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL") or redis_url,
        "TASKSTREAM_KEY_PREFIX": settings.TASKSTREAM["KEY_PREFIX"],
        "CELERY_TASK_DEFAULT_QUEUE": CELERY_QUEUE,
        "DEBUG": "1",
        "TASKSTREAM_JSON": json.dumps(SUITE_THROTTLES),
    }


@pytest.fixture(scope="session")
def start_server(server_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    """Start extra servers: ``start_server(TASKSTREAM_JSON='{"LOG_MAXLEN": 5}')``."""
    started: list[ServerProcess] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(workers: int = 1, **env: str) -> ServerProcess:
        log = LOG_DIR / f"server-{os.getpid()}-{len(started)}.log"
        server = ServerProcess("example.asgi:application", env={**server_env, **env},
                               workers=workers, cwd=ROOT, log=log)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def hub_server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """The shared server with default settings."""
    return start_server()


@pytest.fixture
def make_user(transactional_db: Any) -> Callable[..., Any]:
    from django.contrib.auth import get_user_model

    def make(username: str | None = None, **fields: Any) -> Any:
        username = username or f"user-{secrets.token_hex(3)}"
        return get_user_model().objects.create_user(username=username, password="pw-" + username,
                                                    **fields)

    return make


@pytest.fixture
def session_cookie() -> Callable[[Any], str]:
    """A ``Cookie`` header value for a real logged-in session of ``user``."""
    from taskstream.testing import session_cookie

    return session_cookie


@pytest.fixture(autouse=True)
def _close_sync_to_async_db_connections() -> Iterator[None]:
    """Close the DB connections of the thread ``sync_to_async`` runs DB work in.

    That thread outlives every test; a connection left open in it makes PostgreSQL refuse
    to drop the test database at the end of the session ("being accessed by other users").
    """
    yield
    import asyncio

    from asgiref.sync import SyncToAsync, sync_to_async
    from django.db import connections

    if SyncToAsync.single_thread_executor._threads:  # used by this session at all
        asyncio.run(sync_to_async(connections.close_all)())


@pytest.fixture
async def connect(hub_server: ServerProcess) -> AsyncIterator[Callable[..., Any]]:
    """``await connect(cookie=...)``: a HubClient on the shared server, closed after the test."""
    clients: list[HubClient] = []

    async def open_client(server: ServerProcess | None = None, **kwargs: Any) -> HubClient:
        client = await HubClient.connect((server or hub_server).ws_url, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        with contextlib.suppress(Exception):
            await client.close()


# Celery workers ----------------------------------------------------------------------------

# Worker settings that keep crash recovery within seconds in tests (production: 10/60/30 s).
WORKER_TASKSTREAM = {"JOB_HEARTBEAT_INTERVAL": 0.5, "JOB_HEARTBEAT_TIMEOUT": 3,
                     "JOB_REAPER_INTERVAL": 1}


class WorkerProcess:
    """``celery -A example worker`` in its own process group, on this run's queue.

    ``start()`` returns once the worker logs ``ready``; ``kill()`` SIGKILLs the whole group
    (main process and pool children) as a crashed host would; ``stop()`` is a warm shutdown.
    """

    def __init__(self, env: dict[str, str], *, name: str, concurrency: int = 2,
                 pool: str = "prefork", beat: bool = False, log: Path) -> None:
        self.env = {**os.environ, **env}
        self.name = name
        self.log = log
        self.argv = [sys.executable, "-m", "celery", "-A", "example", "worker", "-P", pool,
                     "-c", str(concurrency), "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-Q", env["CELERY_TASK_DEFAULT_QUEUE"],
                     "-n", f"{name}@%h", "--loglevel", "INFO"]
        if beat:  # the reaper's schedule, in memory: no beat rows in the test database
            self.argv += ["-B", "--scheduler", "celery.beat:Scheduler",
                          "-s", str(log.with_suffix(".beat"))]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.proc.returncode}; "
                                   f"see {self.log}")
            with self.log.open("rb") as f:
                f.seek(offset)
                if b" ready." in f.read():
                    return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"worker {self.name} not ready after {timeout} s; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the main process and its pool children at once: no ack, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None:
            stop_group(self.proc, timeout=timeout)
        self.proc = None


@pytest.fixture(scope="session")
def start_worker(server_env: dict[str, str]) -> Iterator[Callable[..., WorkerProcess]]:
    """Start extra workers: ``start_worker(concurrency=1)``; stopped at the session's end.

    Keyword ``env`` values are added to the worker's environment; ``taskstream`` merges a
    dict into TASKSTREAM_JSON (over :data:`WORKER_TASKSTREAM`).
    """
    started: list[WorkerProcess] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(concurrency: int = 2, pool: str = "prefork", beat: bool = False,
              taskstream: dict[str, Any] | None = None, **env: str) -> WorkerProcess:
        name = f"tsworker{len(started)}-{secrets.token_hex(3)}"
        tsjson = json.dumps({**WORKER_TASKSTREAM, **(taskstream or {})})
        worker = WorkerProcess({**server_env, "TASKSTREAM_JSON": tsjson, **env}, name=name,
                               concurrency=concurrency, pool=pool, beat=beat,
                               log=LOG_DIR / f"{name}.log")
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def celery_worker(start_worker: Callable[..., WorkerProcess]) -> WorkerProcess:
    """The shared worker: 2 prefork processes on this run's queue, with beat (the reaper).

    It shares the test database and Redis, so tests that use it need committed rows:
    ``pytest.mark.django_db(transaction=True)``. Tasks sent from the test process (and
    from ``hub_server``) reach it through the run's own queue.
    """
    return start_worker(concurrency=2, beat=True)
