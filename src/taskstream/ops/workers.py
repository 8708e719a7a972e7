"""Workers up: Celery's broadcast ping, at most once per ``_TTL`` seconds per process."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("taskstream.ops")

_TTL = 10.0
_lock = threading.Lock()
_cached: tuple[float, int | None] = (-_TTL, None)


def workers_up(*, timeout: float = 0.5) -> int | None:
    """How many workers answered a ping (None: the broker could not be asked)."""
    global _cached
    with _lock:
        at, count = _cached
        if time.monotonic() - at < _TTL:
            return count
        from celery import current_app

        try:
            replies = current_app.control.ping(timeout=timeout) or []
            count = len(replies)
        except Exception as exc:
            logger.warning("could not ping the workers: %s", exc)
            count = None
        _cached = (time.monotonic(), count)
        return count
