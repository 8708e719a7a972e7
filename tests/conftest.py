"""Shared fixtures: a real Redis, a real ASGI server, users with real sessions.

The embedded default (no REDIS_URL) starts a throwaway redis-server for the session;
with REDIS_URL set (``make test-services``) the suite uses that Redis under a key
prefix of its own. Servers run as subprocesses against the test database, so tests
that talk to them use ``transactional_db`` (committed rows are visible to them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from taskstream.testing import HubClient, RedisProcess, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"


@pytest.fixture(scope="session", autouse=True)
def redis_url() -> Iterator[str]:
    """Redis for the whole session, and a key prefix no other run shares."""
    own = None
    url = os.environ.get("REDIS_URL")
    if not url:
        own = RedisProcess().start()
        url = own.url
    prefix = f"tstest{secrets.token_hex(4)}:"
    settings.TASKSTREAM = {**settings.TASKSTREAM, "REDIS_URL": url, "KEY_PREFIX": prefix}
    if not os.environ.get("CELERY_BROKER_URL"):
        settings.CELERY_BROKER_URL = url
    yield url
    if own is not None:
        own.close()


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
        "DEBUG": "1",
    }


@pytest.fixture(scope="session")
def start_server(server_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    """Start extra servers: ``start_server(TASKSTREAM_JSON='{"LOG_MAXLEN": 5}')``."""
    started: list[ServerProcess] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(workers: int = 1, **env: str) -> ServerProcess:
        log = LOG_DIR / f"server-{len(started)}.log"
        server = ServerProcess(env={**server_env, **env}, workers=workers, cwd=ROOT, log=log)
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
    from django.test import Client

    def cookie(user: Any) -> str:
        client = Client()
        client.force_login(user)
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}"

    return cookie


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
