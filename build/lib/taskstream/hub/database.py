"""The hub's one way into the database: channels' ``database_sync_to_async``.

A WebSocket has no request cycle, so nothing closes a database connection that has
gone stale (past ``CONN_MAX_AGE``, or broken by a database restart) in the thread the
hub's ORM calls run in. ``database_sync_to_async`` closes such connections before and
after each call. Authentication and topic hooks (rooms) go through :func:`db_call`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async

T = TypeVar("T")


async def db_call(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run the sync ``func(*args, **kwargs)`` in the database thread, in a task of its own.

    The child task keeps asgiref's context variables off the caller's task: on a
    socket's long-lived task they would hold ~400 bytes for the socket's whole life.
    """
    call = database_sync_to_async(func)(*args, **kwargs)
    result: T = await asyncio.get_running_loop().create_task(call)
    return result
