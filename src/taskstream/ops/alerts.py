"""Alert thresholds: queue wait, failure rate, missed beat, worker gone.

Missed beat means no beat leads: taskstream's ``SingleBeatScheduler`` holds a Redis lock
while it runs (renewed every tick, ``BEAT_LOCK_TTL``); the monitor looks for it at each tick.

The monitor measures each at every summary (:func:`measure`, from the database) and hands
what crosses a threshold to :class:`AlertBook`, which announces a crossing once (``alert.raised``
on ``ops`` and a WARNING line) and its end once (``alert.cleared`` and an INFO line). An
alert's state is a row (:class:`~taskstream.ops.models.Alert`), so a monitor that restarts
neither repeats an open alert nor forgets to clear it: no alert storms.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from taskstream.ops.models import Alert, WorkerRecord

logger = logging.getLogger("taskstream.ops")

RAISED = "alert.raised"
CLEARED = "alert.cleared"
# The failure rate is judged over this many minutes, once this many tasks finished in them:
# one failed task out of one is not a rate.
FAILURE_WINDOW_MINUTES = 5
FAILURE_MIN_FINISHED = 5


@dataclass(frozen=True)
class Crossing:
    """A threshold crossed now: ``value`` against ``threshold`` (both in the kind's unit)."""

    key: str
    kind: str
    value: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class Measurement:
    crossings: list[Crossing]
    checked: set[str]  # the kinds measured (an open alert of another kind is left alone)


@dataclass(frozen=True)
class Beat:
    leading: bool  # a beat holds the single-beat lock now
    seen_at: datetime | None  # when one was last seen holding it (by this monitor)


def measure(*, now: datetime, workers: Iterable[WorkerRecord], watching_since: datetime,
            beat: Beat | None = None) -> Measurement:
    """Every threshold against the database now. A kind whose setting is 0 is checked and
    never crossed (so turning it off clears its alert)."""
    from taskstream.conf import conf
    from taskstream.ops import selectors

    crossings: list[Crossing] = []
    checked: set[str] = {Alert.Kind.QUEUE_WAIT.value, Alert.Kind.FAILURE_RATE.value,
                         Alert.Kind.WORKER_GONE.value}

    limit = conf.OPS_ALERT_QUEUE_WAIT
    wait = selectors.queue_wait(now=now) if limit else None
    if limit and wait is not None and wait > limit:
        crossings.append(Crossing(Alert.Kind.QUEUE_WAIT, Alert.Kind.QUEUE_WAIT, wait, limit,
                                  f"the oldest waiting job has waited {wait:.0f} s "
                                  f"(threshold {limit:g} s)"))

    limit = conf.OPS_ALERT_FAILURE_RATE
    if limit:
        failed, finished = selectors.task_outcomes(now=now, minutes=FAILURE_WINDOW_MINUTES)
        if finished >= FAILURE_MIN_FINISHED and failed / finished >= limit:
            crossings.append(Crossing(
                Alert.Kind.FAILURE_RATE, Alert.Kind.FAILURE_RATE, failed / finished, limit,
                f"{failed} of {finished} tasks failed in the last {FAILURE_WINDOW_MINUTES} "
                f"minutes ({failed / finished:.0%}; threshold {limit:.0%})"))

    limit = conf.OPS_ALERT_MISSED_BEAT
    if beat is not None:  # None: no periodic app, or Redis could not say
        checked.add(Alert.Kind.MISSED_BEAT.value)
        since = max(beat.seen_at or watching_since, watching_since)
        silence = 0.0 if beat.leading else (now - since).total_seconds()
        if limit and silence > limit:
            crossings.append(Crossing(
                Alert.Kind.MISSED_BEAT, Alert.Kind.MISSED_BEAT, silence, limit,
                f"no beat has led for {silence:.0f} s (threshold {limit:g} s): periodic "
                "tasks are not being sent; last seen: "
                + (_when(beat.seen_at) if beat.seen_at else "never")))

    limit = conf.OPS_ALERT_WORKER_GONE
    if limit:
        for worker in workers:
            if (worker.online or worker.offline_reason != WorkerRecord.Offline.LOST
                    or worker.offline_at is None):
                continue
            gone = (now - worker.offline_at).total_seconds()
            if gone >= limit:
                crossings.append(Crossing(
                    f"{Alert.Kind.WORKER_GONE}:{worker.hostname}", Alert.Kind.WORKER_GONE,
                    gone + 2 * worker.heartbeat_interval, limit,
                    f"worker {worker.hostname} is gone: no heartbeat since "
                    + (_when(worker.heartbeat_at) if worker.heartbeat_at else "?")))
    return Measurement(crossings, checked)


def _when(moment: datetime) -> str:
    # Read by people on the overview and in logs: to the second, in UTC, said so.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class AlertBook:
    """The open alerts (one row each); :meth:`update` raises and clears them."""

    def __init__(self) -> None:
        self.open: dict[str, Alert] = {}

    def load(self) -> None:
        self.open = {a.key: a for a in Alert.objects.filter(cleared_at=None)}

    def update(self, measured: Measurement, *, now: datetime) -> tuple[list[Alert], list[Alert]]:
        """Open an alert per new crossing, close each open one of a checked kind that no
        longer crosses; announce both. Returns (raised, cleared)."""
        raised: list[Alert] = []
        cleared: list[Alert] = []
        crossing_keys = set()
        for crossing in measured.crossings:
            crossing_keys.add(crossing.key)
            if crossing.key in self.open:
                continue
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        key=crossing.key[:300], kind=crossing.kind, value=crossing.value,
                        threshold=crossing.threshold, detail=crossing.detail[:500],
                        raised_at=now)
            except IntegrityError:  # open already (another monitor): not announced again
                found = Alert.objects.filter(key=crossing.key, cleared_at=None).first()
                if found is not None:
                    self.open[crossing.key] = found
                continue
            self.open[alert.key] = alert
            raised.append(alert)
            logger.warning("ops alert raised: %s: %s", alert.key, alert.detail)
        for key, alert in list(self.open.items()):
            if alert.kind not in measured.checked or key in crossing_keys:
                continue
            alert.cleared_at = now
            Alert.objects.filter(pk=alert.pk).update(cleared_at=now)
            del self.open[key]
            cleared.append(alert)
            logger.info("ops alert cleared: %s (raised %s)", key, alert.raised_at.isoformat())
        for alert in raised:
            _announce(RAISED, alert)
        for alert in cleared:
            _announce(CLEARED, alert)
        return raised, cleared


def _announce(event: str, alert: Alert) -> None:
    from taskstream.hub import publish

    try:
        publish("ops", event, alert.payload())
    except Exception as exc:  # the row says it; the overview shows open alerts on load
        logger.warning("could not publish %s %s on ops: %s", event, alert.key, exc)
