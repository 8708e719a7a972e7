"""The relay: sends the outbox events the fast path could not, in commit order.

Run it as its own process (``python -m taskstream.outbox``; the Procfile's ``relay``).
Several may run for availability: one leader per deployment holds a redis-py ``Lock`` and
sends; the others wait to take over. While Redis (or the database) is down it retries
with a doubling backoff. A relay killed mid-batch resends that batch when it (or another)
takes over, and the hub's per-event keys make the resend invisible to clients.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection
from redis.exceptions import LockError

from taskstream.conf import conf
from taskstream.hub.redis import sync_client
from taskstream.outbox.send import BATCH, outbox_send

logger = logging.getLogger("taskstream.outbox")

# Seconds between looks at an empty outbox; the lock's lifetime (a standby takes over
# this long after a leader died); the first and the longest wait after a failure.
POLL_INTERVAL = 1.0
LOCK_TTL = 10.0
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0


def relay_lock_name() -> str:
    return f"{conf.KEY_PREFIX}outbox:relay"


def relay_run(stop: threading.Event, *, poll_interval: float = POLL_INTERVAL) -> None:
    """Send the outbox until ``stop`` is set; never raises for Redis or database errors."""
    lock = None
    backoff = BACKOFF_MIN
    while not stop.is_set():
        try:
            close_old_connections()
            if lock is None:
                candidate = sync_client().lock(relay_lock_name(), timeout=LOCK_TTL,
                                               blocking=False, thread_local=False)
                if not candidate.acquire():
                    stop.wait(poll_interval)
                    continue
                lock = candidate
                logger.info("outbox relay: leading")
            sent = BATCH
            while sent == BATCH and not stop.is_set():
                lock.reacquire()  # still ours (LockNotOwnedError if not), for another TTL
                sent = outbox_send()
            backoff = BACKOFF_MIN
            stop.wait(poll_interval)
        except LockError:
            logger.warning("outbox relay: lost the lock; standing by")
            lock = None
        except Exception as exc:
            logger.warning("outbox relay: %s: %s; retrying in %.1f s",
                           type(exc).__name__, exc, backoff)
            connection.close()  # a broken connection is not reused after the outage
            stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
    if lock is not None:
        try:
            lock.release()
        except Exception:  # gone already, or Redis is down: it expires on its own
            logger.info("outbox relay: could not release the lock", exc_info=True)
    connection.close()  # this thread's connection: nothing else would close it
