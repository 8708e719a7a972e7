"""The Celery events monitor: ``python -m taskstream.ops.monitor`` (or ``manage.py
taskstream_monitor``).

Consumes the workers' events (start workers with ``-E``, or ``worker_send_task_events``)
into Celery's own bounded in-memory state (``celery.events.state.State``: at most
``max_workers`` workers and ``max_tasks`` tasks, oldest dropped) and publishes a summary on
``ops`` as ``monitor.summary`` at most once per ``OPS_PULSE_INTERVAL``, however many events
arrive. It only reads: Flower (or ``celery events``) can run beside it on the same broker,
each with its own event queue.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

logger = logging.getLogger("taskstream.ops")

EVENT = "monitor.summary"
MAX_WORKERS = 200
MAX_TASKS = 10_000
# Task states counted in a summary (Celery's names).
_STATES = ("RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED")


class Monitor:
    def __init__(self, app: Any, *, max_workers: int = MAX_WORKERS,
                 max_tasks: int = MAX_TASKS) -> None:
        from taskstream.conf import conf

        self.app = app
        self.state = app.events.State(max_workers_in_memory=max_workers,
                                      max_tasks_in_memory=max_tasks)
        self.interval = conf.OPS_PULSE_INTERVAL
        self.events = 0
        self._last = 0.0
        self.stopping = threading.Event()

    def on_event(self, event: dict[str, Any]) -> None:
        self.events += 1
        self.state.event(event)
        self.maybe_publish()

    def summary(self) -> dict[str, Any]:
        workers = [{"hostname": w.hostname, "alive": bool(w.alive), "active": w.active,
                    "processed": w.processed, "heartbeat": w.heartbeats[-1] if w.heartbeats
                    else None} for w in self.state.workers.values()]
        states = Counter(task.state for _, task in self.state.itertasks())
        runtimes = [t.runtime for _, t in self.state.itertasks() if t.runtime is not None]
        return {"workers": sorted(workers, key=lambda w: w["hostname"]),
                "tasks": {s.lower(): states.get(s, 0) for s in _STATES},
                "events": self.events,
                "runtime_avg": sum(runtimes) / len(runtimes) if runtimes else None}

    def maybe_publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        from taskstream.hub import publish

        try:
            publish("ops", EVENT, self.summary())
        except Exception as exc:  # Redis away: the next summary carries the same state
            logger.warning("monitor: could not publish a summary: %s", exc)

    def run(self) -> None:
        """Consume events until :attr:`stopping` is set; reconnects after broker errors."""
        while not self.stopping.is_set():
            try:
                with self.app.connection_for_read() as connection:
                    receiver = self.app.events.Receiver(connection,
                                                        handlers={"*": self.on_event})
                    logger.info("monitor: consuming Celery events")
                    while not self.stopping.is_set():
                        try:
                            receiver.capture(limit=None, timeout=self.interval, wakeup=False)
                        except TimeoutError:
                            self.maybe_publish()  # idle: the summary still goes out
            except Exception as exc:
                if self.stopping.is_set():
                    break
                logger.warning("monitor: broker connection lost (%s); reconnecting", exc)
                self.stopping.wait(1.0)


def main() -> None:
    import django

    django.setup()
    from celery import current_app

    logging.basicConfig(level=logging.INFO)
    monitor = Monitor(current_app)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        monitor.stopping.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    monitor.run()


if __name__ == "__main__":
    main()
