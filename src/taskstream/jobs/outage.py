"""Riding out a short database outage inside a worker: retry with backoff, then give up.

A run's own bookkeeping (progress, heartbeat, its final write) is retried for up to
``JOB_DB_RETRY_SECONDS`` when the database cannot be reached, instead of failing a job
whose work may be fine: a restart or fail-over of the database costs a pause, not a rerun.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connections, router

from taskstream.conf import conf

logger = logging.getLogger("taskstream.jobs")

# What a lost or refused connection raises (psycopg, sqlite3 and Django's own wrappers).
UNREACHABLE = (OperationalError, InterfaceError)
_FIRST_DELAY = 0.1
_MAX_DELAY = 5.0

T = TypeVar("T")


def discard_connection() -> None:
    """Drop this thread's connection to the jobs' database: the next query opens a new one."""
    from taskstream.jobs.models import Job

    connection = connections[router.db_for_write(Job)]
    if connection.in_atomic_block:
        return  # the transaction's owner decides; closing it here would hide the error
    try:
        connection.close()
    except Exception:  # a connection that is already broken may fail to close cleanly
        connection.connection = None


def retry_unreachable(call: Callable[[], T], *, what: str) -> T:
    """``call()``, retried with doubling delays while the database is unreachable, for up to
    ``JOB_DB_RETRY_SECONDS``; then the last error is raised."""
    deadline = time.monotonic() + conf.JOB_DB_RETRY_SECONDS
    delay = _FIRST_DELAY
    while True:
        try:
            return call()
        except UNREACHABLE as exc:
            from taskstream.jobs.models import Job

            if connections[router.db_for_write(Job)].in_atomic_block:
                raise  # inside a transaction a retry would run outside it
            discard_connection()
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            logger.warning("%s: database unreachable (%s: %s); retrying in %.1f s", what,
                           type(exc).__name__, exc, min(delay, left))
            time.sleep(min(delay, left))
            delay = min(delay * 2, _MAX_DELAY)
