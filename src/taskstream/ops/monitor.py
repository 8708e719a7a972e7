"""The Celery events monitor: ``python -m taskstream.ops.monitor`` (or ``manage.py
taskstream_monitor``).

Consumes the workers' events (start workers with ``-E``, or ``worker_send_task_events``)
into durable, bounded history in the database (:mod:`taskstream.ops.history`: workers with
their heartbeats, task events, per-minute counts), judges the alert thresholds
(:mod:`taskstream.ops.alerts`) and publishes ``monitor.summary`` on ``ops`` at most once per
``OPS_PULSE_INTERVAL``, however many events arrive. Each of those steps is one *tick*; the
event handler itself touches no database or network. A restarted monitor carries on from
the database. It only reads the broker's events: Flower (or ``celery events``) can run
beside it on the same broker, each with its own event queue.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskstream.ops.alerts import Beat

logger = logging.getLogger("taskstream.ops")

EVENT = "monitor.summary"
# Pruning deletes rows: once a minute, or sooner once a tenth of the bound came in since.
PRUNE_EVERY = 60.0


class Monitor:
    def __init__(self, app: Any) -> None:
        from taskstream.conf import conf
        from taskstream.ops.alerts import AlertBook
        from taskstream.ops.history import History

        self.app = app
        self.interval = conf.OPS_PULSE_INTERVAL
        self.history = History()
        self.alerts = AlertBook()
        self.events = 0
        self.summaries = 0
        self._last = 0.0
        self._pruned = time.monotonic()
        self._concurrency: dict[str, int] = {}  # answers of the stats thread
        self._asked: set[str] = set()
        self.beat_seen_at: datetime | None = None
        self.loaded = False
        self.stopping = threading.Event()

    def load(self) -> None:
        """Read back the workers and open alerts a previous monitor left."""
        self.history.load()
        self.alerts.load()
        self.loaded = True

    def on_event(self, event: dict[str, Any]) -> None:
        self.events += 1
        self.history.add(event)
        if event.get("type") == "worker-online" or (
                event.get("type") == "worker-heartbeat"
                and event.get("hostname") not in self._asked):
            self._ask_concurrency(str(event.get("hostname") or ""))
        self.maybe_publish()

    def _ask_concurrency(self, hostname: str) -> None:
        """Heartbeats do not carry the pool size: ask the worker once (its stats), aside."""
        if not hostname or hostname in self._asked:
            return
        self._asked.add(hostname)

        def ask() -> None:
            try:
                stats = self.app.control.inspect(destination=[hostname], timeout=2.0).stats()
                pool = ((stats or {}).get(hostname) or {}).get("pool") or {}
                if isinstance(pool.get("max-concurrency"), int):
                    self._concurrency[hostname] = pool["max-concurrency"]
                    return
            except Exception as exc:
                logger.info("monitor: could not ask %s for its stats: %s", hostname, exc)
            self._asked.discard(hostname)  # ask again at its next heartbeat

        threading.Thread(target=ask, name=f"stats-{hostname}", daemon=True).start()

    def maybe_publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.tick()

    def tick(self) -> dict[str, Any] | None:
        """Write, prune, judge the alerts, publish one summary; the summary (None when the
        database could not be read)."""
        from django.db import close_old_connections

        from taskstream.conf import conf
        from taskstream.ops.alerts import measure

        now = datetime.now(UTC)
        try:
            close_old_connections()
            if not self.loaded:
                self.load()
            for hostname, concurrency in list(self._concurrency.items()):
                self.history.set_concurrency(hostname, concurrency)
                del self._concurrency[hostname]
            self.history.expire(now)
            self.history.flush()
            max_events = conf.OPS_HISTORY_MAX_EVENTS
            if (time.monotonic() - self._pruned >= PRUNE_EVERY
                    or self.history.since_prune >= max_events // 10):
                self._pruned = time.monotonic()
                self.history.prune(now=now, max_events=max_events,
                                   max_age=conf.OPS_HISTORY_MAX_AGE)
            self.alerts.update(measure(now=now, workers=self.history.workers.values(),
                                       watching_since=self.history.started,
                                       beat=self._beat(now)), now=now)
            summary = self.summary(now=now)
        except Exception as exc:  # the database away: events wait in memory (bounded)
            logger.warning("monitor: could not write or read the history (%s); %d events "
                           "held", exc, self.history.pending)
            return None
        from taskstream.hub import publish

        try:
            # Ephemeral: a summary is a snapshot the next one replaces, kept out of the
            # topic's log (alerts and audit records stay replayable there).
            publish("ops", EVENT, summary, ephemeral=True)
            self.summaries += 1
        except Exception as exc:  # Redis away: the next summary carries the same state
            logger.warning("monitor: could not publish a summary: %s", exc)
        return summary

    def _beat(self, now: datetime) -> Beat | None:
        from taskstream.ops.alerts import Beat
        from taskstream.ops.selectors import beat_leading

        leading = beat_leading()
        if leading is None:
            return None
        if leading:
            self.beat_seen_at = now
        return Beat(leading=leading, seen_at=self.beat_seen_at)

    def summary(self, *, now: datetime | None = None) -> dict[str, Any]:
        from taskstream.ops.selectors import monitor_overview

        now = now or datetime.now(UTC)
        # ``at``: when the monitor made it (pages may say "as of"; tests check the spacing).
        return {**monitor_overview(now=now), "events": self.events,
                "dropped": self.history.dropped, "at": now.isoformat()}

    def run(self) -> None:
        """Consume events until :attr:`stopping` is set; reconnects after broker errors.
        What came since the last tick is written on the way out (SIGTERM included)."""
        try:
            while not self.stopping.is_set():
                try:
                    self._consume()
                except Exception as exc:
                    if self.stopping.is_set():
                        break
                    logger.warning("monitor: broker connection lost (%s); reconnecting", exc)
                    self.stopping.wait(1.0)
        finally:
            try:
                self.history.flush()
            except Exception as exc:
                logger.warning("monitor: could not write the last events: %s", exc)

    def _consume(self) -> None:
        with self.app.connection_for_read() as connection:
            receiver = self.app.events.Receiver(connection, handlers={"*": self.on_event})
            logger.info("monitor: consuming Celery events")
            while not self.stopping.is_set():
                try:
                    receiver.capture(limit=None, timeout=self.interval, wakeup=False)
                except TimeoutError:
                    self.maybe_publish()  # idle: silence is judged, summaries go out


def main() -> None:
    import django

    django.setup()
    from celery import current_app

    if not logger.hasHandlers():  # the project's LOGGING may already print ours
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
