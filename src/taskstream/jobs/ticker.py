"""One background thread per worker process: progress flushes and heartbeats of its runs.

The task's thread only hands progress values over; this thread writes and publishes
them (at once when one is due, so events are not delayed), heartbeats a task busy in a
long step, and sends a value held back by the rate limit within ``JOB_PROGRESS_INTERVAL``
even if the task reports no more. Its database and Redis waits release the GIL, so the
task keeps computing meanwhile.

The thread sleeps until the earliest thing due (a held value, a heartbeat), so a job that
never reports progress costs one wake-up per heartbeat interval and a job that ends
quickly usually none. Whoever makes something due earlier than that wakes it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from django.db import close_old_connections, connections

from taskstream.jobs.lifecycle import Run

logger = logging.getLogger("taskstream.jobs")


class Ticker:
    def __init__(self) -> None:
        self._runs: dict[int, Run] = {}
        self._cond = threading.Condition(threading.Lock())
        self._poked = False
        self._pid: int | None = None
        # When the thread wakes next on its own (monotonic; inf: only when woken). Read and
        # written under `_cond`; -inf while it is awake, as it looks at every run then.
        self._next_wake = -math.inf
        # Events of callers waiting for this thread to close its database connections.
        self._releases: list[threading.Event] = []

    def add(self, run: Run) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use in this (forked) process
                self._pid = os.getpid()
                self._runs = {}
                self._releases = []
                self._next_wake = -math.inf
                threading.Thread(target=self._loop, name="taskstream-jobs-ticker",
                                 daemon=True).start()
            self._runs[id(run)] = run
            run.wake = self.wake
            run.schedule = self.schedule
            if run.next_due() < self._next_wake:
                self._cond.notify()  # e.g. asleep with no runs: this one's heartbeat is due

    def remove(self, run: Run, *, release: bool = False) -> None:
        """Stop ticking ``run``. ``release``: and wait (briefly) until this thread has closed
        its database connections if no run is left. Eager runs ask it: in a test process
        nobody else ever would, and an open connection keeps the test database from being
        dropped. A worker keeps them for its next job."""
        with self._cond:
            self._runs.pop(id(run), None)
            run.wake = run.schedule = None
            if not release or self._pid != os.getpid():
                return
            done = threading.Event()
            self._releases.append(done)
            self._poked = True
            self._cond.notify()
        done.wait(10.0)

    def wake(self) -> None:
        """A run has progress due: flush it now rather than at the next tick."""
        with self._cond:
            self._poked = True
            self._cond.notify()

    def schedule(self, when: float) -> None:
        """A run holds a value due at ``when`` (monotonic): be awake by then."""
        with self._cond:
            if when < self._next_wake:
                self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._poked:
                    due = min((run.next_due() for run in self._runs.values()),
                              default=math.inf)
                    wait = due - time.monotonic()
                    if wait > 0:
                        self._next_wake = due
                        self._cond.wait(None if due == math.inf else wait)
                self._next_wake = -math.inf
                self._poked = False
                runs = list(self._runs.values())
            for run in runs:
                try:
                    run.tick()
                except Exception:
                    logger.exception("progress or heartbeat of job %s failed", run.job.pk)
                    close_old_connections()
            with self._cond:
                releases, self._releases = self._releases, []
                idle = not self._runs
            if releases:
                if idle:
                    connections.close_all()  # this thread's own
                for done in releases:
                    done.set()


ticker = Ticker()
