"""pytest plugin (entry point ``taskstream``): fixtures for tests of projects that use taskstream.

Loaded by pytest whenever ``django-taskstream`` is installed; nothing here runs unless a test
asks for a fixture (``-p no:taskstream`` turns it off). Fixtures:

* ``taskstream_redis_url`` (session): a Redis for the hub. An embedded ``redis-server``
  started for the session, or the URL given with ``--taskstream-redis-url`` (or the
  ``TASKSTREAM_TEST_REDIS_URL`` environment variable). Override it to supply your own.
* ``taskstream_redis`` (session): points ``TASKSTREAM["REDIS_URL"]`` at it, under a
  ``KEY_PREFIX`` of this session's own (a shared Redis is never flushed, and runs never
  see each other's keys); restored at the session's end. Use it wherever code publishes.
* ``taskstream_hub`` (async, needs pytest-asyncio): ``await taskstream_hub(user=alice)``
  opens a connected :class:`~taskstream.testing.HubCommunicator`; all are closed after the
  test, with the hub's per-loop connections.
* ``taskstream_eager``: Celery's ``task_always_eager`` and ``task_eager_propagates`` on
  for one test (jobs run inline when their transaction commits), restored after it.

docs/testing.md shows them at work.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from taskstream.communicator import HubCommunicator, close_loop_resources
from taskstream.devredis import embedded_redis


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("taskstream")
    group.addoption("--taskstream-redis-url", default=None,
                    help="Redis for taskstream's fixtures (default: an embedded redis-server; "
                         "env TASKSTREAM_TEST_REDIS_URL)")


@pytest.fixture(scope="session")
def taskstream_redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a Redis for this session: given, or an embedded redis-server."""
    given = (request.config.getoption("--taskstream-redis-url")
             or os.environ.get("TASKSTREAM_TEST_REDIS_URL"))
    if given:
        yield given
        return
    with embedded_redis() as server:
        yield server.url


@pytest.fixture(scope="session")
def taskstream_redis(taskstream_redis_url: str) -> Iterator[str]:
    """``TASKSTREAM`` pointed at ``taskstream_redis_url`` under a key prefix of this
    session's own; yields the URL."""
    from django.conf import settings

    before = getattr(settings, "TASKSTREAM", None)
    settings.TASKSTREAM = {**(before or {}), "REDIS_URL": taskstream_redis_url,
                           "KEY_PREFIX": f"tstest{secrets.token_hex(4)}:"}
    yield taskstream_redis_url
    if before is None:
        with contextlib.suppress(AttributeError):
            del settings.TASKSTREAM
    else:
        settings.TASKSTREAM = before


@pytest.fixture
def taskstream_eager() -> Iterator[Any]:
    """Celery runs tasks inline (``task_always_eager``) and raises their errors
    (``task_eager_propagates``) during the test; yields the app's ``conf``."""
    from celery import current_app

    conf = current_app.conf
    before = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    yield conf
    conf.task_always_eager, conf.task_eager_propagates = before


def _close_db_connections_of_async_thread() -> Awaitable[None] | None:
    """The thread ``sync_to_async`` runs database work in outlives the test; a connection left
    open there keeps PostgreSQL from dropping the test database at the session's end."""
    from asgiref.sync import SyncToAsync, sync_to_async
    from django.db import connections

    if SyncToAsync.single_thread_executor._threads:  # used at all
        return sync_to_async(connections.close_all)()
    return None


async def _hub(taskstream_redis: str) -> AsyncIterator[Callable[..., Awaitable[HubCommunicator]]]:
    """``await taskstream_hub(user=None, **options)``: a connected HubCommunicator (options as
    :class:`~taskstream.testing.HubCommunicator`'s); closed after the test. Tests that sign
    users in use ``django_db(transaction=True)``: the hub reads the session from another
    thread, which sees committed rows only."""
    opened: list[HubCommunicator] = []

    async def connect(user: Any = None, **options: Any) -> HubCommunicator:
        hub = HubCommunicator(user=user, **options)
        opened.append(hub)
        await hub.connect()
        return hub

    yield connect
    for hub in opened:
        with contextlib.suppress(Exception):
            await hub.disconnect()
    await close_loop_resources()
    closing = _close_db_connections_of_async_thread()
    if closing is not None:
        await closing


def _hub_needs_pytest_asyncio() -> None:
    raise pytest.UsageError("the taskstream_hub fixture needs pytest-asyncio "
                            "(pip install pytest-asyncio)")


taskstream_hub: Any
try:
    import pytest_asyncio
except ImportError:  # the plugin still loads; the fixture says what it needs when asked for
    taskstream_hub = pytest.fixture(_hub_needs_pytest_asyncio, name="taskstream_hub")
else:
    taskstream_hub = pytest_asyncio.fixture(_hub, name="taskstream_hub")
