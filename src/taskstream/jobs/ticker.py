"""One background thread per worker process: progress flushes and heartbeats of its runs.

The task's thread only hands progress values over; this thread writes and publishes
them (at once when one is due, so events are not delayed), heartbeats a task busy in a
long step, and sends a value held back by the rate limit within ``JOB_PROGRESS_INTERVAL``
even if the task reports no more. Its database and Redis waits release the GIL, so the
task keeps computing meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading

from django.db import close_old_connections

from taskstream.jobs.lifecycle import Run

logger = logging.getLogger("taskstream.jobs")


class Ticker:
    def __init__(self) -> None:
        self._runs: dict[int, Run] = {}
        self._cond = threading.Condition(threading.Lock())
        self._poked = False
        self._pid: int | None = None

    def add(self, run: Run) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use in this (forked) process
                self._pid = os.getpid()
                self._runs = {}
                threading.Thread(target=self._loop, name="taskstream-jobs-ticker",
                                 daemon=True).start()
            self._runs[id(run)] = run
            run.wake = self.wake

    def remove(self, run: Run) -> None:
        with self._cond:
            self._runs.pop(id(run), None)
            run.wake = None

    def wake(self) -> None:
        """A run has progress due: flush it now rather than at the next tick."""
        with self._cond:
            self._poked = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._runs:
                    self._cond.wait()
                if not self._poked:
                    timeout = min(min(r.interval, r.heartbeat_interval)
                                  for r in self._runs.values())
                    self._cond.wait(timeout)
                self._poked = False
                runs = list(self._runs.values())
            for run in runs:
                try:
                    run.tick()
                except Exception:
                    logger.exception("progress or heartbeat of job %s failed", run.job.pk)
                    close_old_connections()


ticker = Ticker()
