"""``jobs.changed`` on ``ops``: at most one per ``OPS_PULSE_INTERVAL`` per process.

Staff pages refetch their numbers when it arrives, so it carries only how many changes it
stands for. However many jobs a worker runs, it publishes at most once a second; the
change that comes inside the interval is not lost: a timer sends it when the interval ends.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

logger = logging.getLogger("taskstream.ops")

EVENT = "jobs.changed"


class Pulse:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._last = 0.0
        self._timer: threading.Timer | None = None

    def note(self, state: str) -> None:
        from taskstream.conf import conf

        with self._lock:
            self._pending[state] = self._pending.get(state, 0) + 1
            if self._timer is not None:
                return
            delay = max(0.0, self._last + conf.OPS_PULSE_INTERVAL - time.monotonic())
            self._timer = threading.Timer(delay, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self) -> None:
        from taskstream.hub import publish

        with self._lock:
            counts, self._pending = self._pending, {}
            self._timer = None
            self._last = time.monotonic()
        if not counts:
            return
        try:
            publish("ops", EVENT, {"changes": counts})
        except Exception as exc:  # a live page misses one refresh; the numbers are in the DB
            logger.warning("could not publish %s on ops: %s", EVENT, exc)


_pulse = Pulse()


def job_moved(sender: Any, *, state: str, **kwargs: Any) -> None:
    """Receiver of ``job_moved``: count the change for the next ``jobs.changed``."""
    _pulse.note(state)
